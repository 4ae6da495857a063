// Package bench is sluice's performance harness: the scenarios of "sluice bench", each
// measured end to end (input file, ingest with the real tokenizer, the SQLite ledger, the
// HTTP client, the simulator) and judged against its target.
//
// Most scenarios run the simulator in the same process, through its in-process
// transport or over loopback HTTP. The wire scenario runs it in a process of its own
// ("sluice sim", started as Options.Exe), and measures sluice against a bare keep-alive
// HTTP loop and the naive openai-go + errgroup client on the same server in one run,
// with the CPU time each spends per request. The sluice command only parses flags and
// prints; everything measured lives here, where tests reach it.
package bench
