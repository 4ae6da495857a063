package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sluice-llm/sluice"
)

// UploadFile uploads r as a batch input file named name (POST /files, multipart, purpose
// "batch"). The content is streamed: it is never held in memory whole, and it cannot be
// resent, so a failed upload must be started again with a fresh reader. A provider that
// rejects the file gives an *sluice.UpstreamError with its own message; an error reading
// r is returned wrapped.
func (c *Client) UploadFile(ctx context.Context, name string, r io.Reader) (*sluice.File, error) {
	ep := c.join("/v1/files")
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	var readErr error // set by the writer goroutine before done is closed
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(writeUpload(mw, name, r, &readErr))
	}()
	hreq, err := c.newRequest(ctx, http.MethodPost, ep.url, nil)
	if err == nil {
		hreq.Body = pr // ContentLength 0 with a body: sent chunked
		hreq.Header["Content-Type"] = []string{mw.FormDataContentType()}
	}
	var f sluice.File
	if err == nil {
		err = c.doJSON(ctx, hreq, "POST "+ep.display, &f)
	}
	pr.CloseWithError(errors.New("upload finished")) // ends the writer if the answer came early
	<-done
	if readErr != nil {
		return nil, fmt.Errorf("upload file %s: read: %w", name, readErr)
	}
	if err != nil {
		return nil, fmt.Errorf("upload file %s: %w", name, err)
	}
	return &f, nil
}

// writeUpload writes the multipart form of an upload. A failure to read r is also stored
// in readErr, to tell it apart from the request's own failures.
func writeUpload(mw *multipart.Writer, name string, r io.Reader, readErr *error) error {
	if err := mw.WriteField("purpose", sluice.PurposeBatch); err != nil {
		return err
	}
	part, err := mw.CreateFormFile("file", name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(part, readerOnly{r}); err != nil {
		var re readError
		if errors.As(err, &re) {
			*readErr = re.err
		}
		return err
	}
	return mw.Close()
}

// readerOnly marks errors of the wrapped reader as readErrors, so that io.Copy's errors
// can be told apart from the pipe's.
type readerOnly struct{ r io.Reader }

func (ro readerOnly) Read(p []byte) (int, error) {
	n, err := ro.r.Read(p)
	if err != nil && err != io.EOF {
		err = readError{err}
	}
	return n, err
}

type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// CreateBatch creates a batch of the requests in the uploaded file inputFileID, for
// endpoint (such as sluice.EndpointChatCompletions) within window ("24h"). metadata may
// be nil.
func (c *Client) CreateBatch(ctx context.Context, inputFileID, endpoint, window string, metadata map[string]string) (*sluice.Batch, error) {
	body, err := json.Marshal(struct {
		InputFileID      string            `json:"input_file_id"`
		Endpoint         string            `json:"endpoint"`
		CompletionWindow string            `json:"completion_window"`
		Metadata         map[string]string `json:"metadata,omitempty"`
	}{inputFileID, endpoint, window, metadata})
	if err != nil {
		return nil, fmt.Errorf("create batch: %w", err)
	}
	var b sluice.Batch
	if err := c.call(ctx, http.MethodPost, "/v1/batches", body, &b); err != nil {
		return nil, fmt.Errorf("create batch: %w", err)
	}
	return &b, nil
}

// Batch retrieves the batch id (GET /batches/{id}).
func (c *Client) Batch(ctx context.Context, id string) (*sluice.Batch, error) {
	var b sluice.Batch
	if err := c.call(ctx, http.MethodGet, "/v1/batches/"+url.PathEscape(id), nil, &b); err != nil {
		return nil, fmt.Errorf("get batch %s: %w", id, err)
	}
	return &b, nil
}

// ListBatches lists up to limit batches (GET /batches), newest first, starting after the
// batch with id after ("" for the newest); more reports whether there are further ones. A
// limit of 0 or less leaves the page size to the provider (20 at OpenAI).
func (c *Client) ListBatches(ctx context.Context, after string, limit int) (batches []sluice.Batch, more bool, err error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if after != "" {
		q.Set("after", after)
	}
	path := "/v1/batches"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var page struct {
		Data    []sluice.Batch `json:"data"`
		HasMore bool           `json:"has_more"`
	}
	if err = c.call(ctx, http.MethodGet, path, nil, &page); err != nil {
		return nil, false, fmt.Errorf("list batches: %w", err)
	}
	return page.Data, page.HasMore, nil
}

// CancelBatch asks the provider to cancel the batch id (POST /batches/{id}/cancel). The
// batch returned is usually still cancelling: poll Batch until it is cancelled.
func (c *Client) CancelBatch(ctx context.Context, id string) (*sluice.Batch, error) {
	var b sluice.Batch
	if err := c.call(ctx, http.MethodPost, "/v1/batches/"+url.PathEscape(id)+"/cancel", nil, &b); err != nil {
		return nil, fmt.Errorf("cancel batch %s: %w", id, err)
	}
	return &b, nil
}

// FileContent returns the content of the file id (GET /files/{id}/content) as a stream,
// which the caller must close. Config.MaxBodyBytes does not apply to it.
func (c *Client) FileContent(ctx context.Context, id string) (io.ReadCloser, error) {
	ep := c.join("/v1/files/" + url.PathEscape(id) + "/content")
	hreq, err := c.newRequest(ctx, http.MethodGet, ep.url, nil)
	if err != nil {
		return nil, fmt.Errorf("get file %s content: %w", id, err)
	}
	start := time.Now()
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("get file %s content: %w", id, c.noAnswer(ctx, "GET "+ep.display, err, start))
	}
	if hresp.StatusCode/100 == 2 {
		return hresp.Body, nil
	}
	defer hresp.Body.Close()
	_, ue := c.answer(ctx, hresp, ep.display, start)
	return nil, fmt.Errorf("get file %s content: %w", id, ue)
}

// BatchResults downloads the output or error file id and calls fn with each of its
// results, in order, as ReadBatchResults reads them.
func (c *Client) BatchResults(ctx context.Context, id string, fn func(*sluice.BatchResult) error) error {
	rc, err := c.FileContent(ctx, id)
	if err != nil {
		return err
	}
	defer rc.Close()
	return ReadBatchResults(rc, fn)
}

// DeleteFile deletes the file id (DELETE /files/{id}).
func (c *Client) DeleteFile(ctx context.Context, id string) error {
	var d struct {
		Deleted bool `json:"deleted"`
	}
	if err := c.call(ctx, http.MethodDelete, "/v1/files/"+url.PathEscape(id), nil, &d); err != nil {
		return fmt.Errorf("delete file %s: %w", id, err)
	}
	if !d.Deleted {
		return fmt.Errorf("delete file %s: the upstream did not delete it", id)
	}
	return nil
}

// call sends a JSON request (body nil for none) to path, joined like a request URL, and
// decodes the JSON answer into v.
func (c *Client) call(ctx context.Context, method, path string, body []byte, v any) error {
	ep := c.join(path)
	hreq, err := c.newRequest(ctx, method, ep.url, body)
	if err != nil {
		return err
	}
	return c.doJSON(ctx, hreq, method+" "+ep.display, v)
}

// doJSON sends hreq and decodes its JSON answer into v. Failures are
// *sluice.UpstreamError, as from Do. op names the request for messages.
func (c *Client) doJSON(ctx context.Context, hreq *http.Request, op string, v any) error {
	start := time.Now()
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		return c.noAnswer(ctx, op, err, start)
	}
	defer hresp.Body.Close()
	body, ue := c.answer(ctx, hresp, op, start)
	if ue != nil {
		return ue
	}
	if err := json.Unmarshal(body, v); err != nil {
		msg := fmt.Sprintf("%d answer to %s is not the expected object: %v", hresp.StatusCode, op, err)
		return &sluice.UpstreamError{StatusCode: hresp.StatusCode, Code: sluice.CodeInvalidResponse, Message: msg, Err: err}
	}
	return nil
}

// answer reads an answer's body and classifies it as Do does: the body of a usable 2xx
// JSON answer, or the error the answer stands for.
func (c *Client) answer(ctx context.Context, hresp *http.Response, op string, start time.Time) ([]byte, *sluice.UpstreamError) {
	raw, err := readBody(hresp, c.maxBody)
	defer raw.release()
	if err != nil && !errors.Is(err, errTooLarge) {
		return nil, c.noAnswer(ctx, "read answer to "+op, err, start)
	}
	resp := &sluice.Response{StatusCode: hresp.StatusCode}
	if err != nil {
		return nil, c.tooLarge(resp, hresp.Header)
	}
	if ue := c.interpret(resp, hresp.Header, &raw); ue != nil {
		return nil, ue
	}
	return resp.Body, nil
}
