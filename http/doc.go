// Package http is sluice serve's HTTP adapter: a self-hosted, OpenAI-compatible Batch
// API over a service.Service. Clients built on the official OpenAI SDKs point their base
// URL at it, upload a JSONL file through /v1/files, create a batch through /v1/batches,
// poll it and download its output and error files, while the service runs the batch on a
// sluice.Engine against whatever upstream the operator configured (a provider with no
// Batch API of its own, a vLLM or Ollama server, a gateway, or the built-in simulator).
//
// A handler decodes the request, calls the service and encodes its answer; the rules
// (validation, the batch lifecycle, budgets, webhooks) are the service's. The service's
// error codes become HTTP statuses in one table (errors.go): EINVALID 400, EUNAUTHORIZED
// 401, ENOTFOUND 404, ECONFLICT 409, ETOOLARGE 413, EQUOTA and ERATELIMIT 429,
// EUNAVAILABLE 503, anything else 500 without its cause. What only HTTP knows stays
// here: connection limits and body rates (Limits, Listen, NewHTTPServer), the multipart
// upload, list queries, the bearer key.
//
//	svc, err := service.New(ctx, cfg)
//	srv := http.NewServer(svc, logger)
//	mux.Handle("/", srv.Handler()) // beside other handlers (/metrics, a dashboard)
//
// # Endpoints
//
//	POST   /v1/files                 upload (multipart, purpose=batch), streamed to disk
//	GET    /v1/files                 list (after, limit, order, purpose)
//	GET    /v1/files/{id}            retrieve
//	GET    /v1/files/{id}/content    download
//	DELETE /v1/files/{id}            delete
//	POST   /v1/batches               create (input_file_id, endpoint, completion_window, metadata)
//	GET    /v1/batches               list (after, limit, order)
//	GET    /v1/batches/{id}          retrieve, with live request_counts
//	POST   /v1/batches/{id}/cancel   cancel
//	GET    /v1/usage                 the calling key's usage and budget (sluice's own)
//	GET    /healthz                  liveness, no key needed
//
// Every JSON answer carries Content-Type: application/json, and every error is the
// OpenAI error body {"error":{"message","type","param","code"}}.
//
// # Keys
//
// Clients present "Authorization: Bearer KEY". The service knows only the SHA-256 of each
// key (service.Config.KeyHashes); a key sees only the files and batches it created, and
// the ids of others' objects answer 404 as if they did not exist. Server.Authenticate
// tells other handlers (a dashboard) whose key a request carries, and whether it is an
// admin key.
package http
