// Package batch runs a job's requests through a provider's Batch API (POST /v1/files,
// POST /v1/batches): half the price of online calls, for an answer within the batch's
// completion window.
//
// # Parts and rounds
//
// A [Runner] splits the job's pending requests into parts: one provider batch each,
// holding requests of one endpoint and one model (OpenAI refuses a batch that mixes
// them), at most Config.MaxLines requests and Config.MaxBytes bytes. Each part's input
// file is streamed from the ledger to the provider; nothing is written to disk. The
// requests a part holds are in flight in the ledger under the part's owner with a lease
// that never expires, so an online run of the same job (sluice run --mode hybrid) never
// sends them too.
//
// When a part's batch ends (completed, failed, expired, cancelled), its output and error
// files are read back and matched to requests by custom_id:
//
//   - a 2xx answer is done;
//   - an answer with a status that will not change (400, 404) is failed, with the
//     provider's body;
//   - an answer that may (408, 409, 429, 5xx), a request the batch did not run
//     (batch_expired, batch_cancelled) and a request missing from both files go back to
//     pending;
//   - a line the provider's validation named (a batch that failed validation) is failed
//     with the provider's message; the part's other requests go back to pending.
//
// Once every part of a round is collected, the requests back in pending are submitted as
// the parts of the next round, up to Config.MaxRounds rounds; what is left after that is
// [Progress.Leftover], for the caller to run online.
//
// # Crashes and restarts
//
// Every step is recorded in the store before the next: the part and its requests before
// the upload, the file id before the batch is created, the batch id as soon as it is
// known. A Runner in a new process carries on from there. A part whose file was uploaded
// but whose batch id was never recorded (the process died, or the answer was lost) is
// looked up among the provider's newest batches by its input file before a batch is
// created again, so a batch is not paid for twice. Collecting a part twice records
// nothing twice: a request already recorded is no longer the part's.
//
// # Hybrid runs
//
// [Runner.RunHybrid] runs a job for Batch API prices against a deadline: it polls the
// batches and, once the time left is no longer enough to run what is unfinished online
// at the known rate ([Plan.SwitchAt]), cancels them, keeps what they finished, and runs
// the rest online. [Online] is that online run (its Run is RunHybrid's online half), and
// what runs a job's [Progress.Leftover] after its last round: it releases what a crashed
// online run of the job left in flight ([OnlineOwner]) and leaves the requests batches
// hold to them.
package batch
