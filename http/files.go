package http

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/service"
)

const maxFormField = 1 << 10 // bytes of a non-file multipart field

// createFile serves POST /v1/files: the file part is streamed to the service as it
// arrives, whichever order the parts come in.
func (s *Server) createFile(w http.ResponseWriter, r *http.Request, tenant string) (err error) {
	_, maxBytes := s.svc.Limits()
	r.Body = http.MaxBytesReader(w, r.Body, maxBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return invalid("file", "Expected a multipart/form-data body with a file: %v", err)
	}
	var (
		purpose string
		up      *service.Upload
	)
	defer func() { // a failed upload leaves nothing behind
		if up != nil && err != nil {
			up.Discard()
		}
	}()
	for {
		part, perr := mr.NextPart()
		if errors.Is(perr, io.EOF) {
			break
		}
		if perr != nil {
			return s.uploadError(perr)
		}
		switch part.FormName() {
		case "purpose":
			b, rerr := io.ReadAll(io.LimitReader(part, maxFormField))
			if rerr != nil {
				return s.uploadError(rerr)
			}
			purpose = string(b)
		case "file":
			if up != nil {
				return invalid("file", "Expected one file, got several.")
			}
			if up, err = s.svc.UploadFile(tenant, part.FileName(), part); err != nil {
				return s.uploadError(err)
			}
		}
		part.Close()
	}
	if up == nil {
		return invalid("file", "Missing the file to upload.")
	}
	f, err := up.Commit(r.Context(), purpose)
	up = nil // committed, or discarded by Commit
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// uploadError maps an error of reading the upload: a body cut off at its limit is a
// file too large.
func (s *Server) uploadError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return s.svc.FileTooLarge()
	}
	return err
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request, tenant string) error {
	f, err := s.svc.File(r.Context(), tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// fileContent serves GET /v1/files/{id}/content, streamed from disk.
func (s *Server) fileContent(w http.ResponseWriter, r *http.Request, tenant string) error {
	f, content, err := s.svc.FileContent(r.Context(), tenant, r.PathValue("id"))
	if err != nil {
		return err
	}
	defer content.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(f.Bytes, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, content) // the client may go away; nothing to tell it then
	return nil
}

// deleted answers a file deletion.
type deleted struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

// deleteFile serves DELETE /v1/files/{id}.
func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request, tenant string) error {
	id := r.PathValue("id")
	if err := s.svc.DeleteFile(r.Context(), tenant, id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deleted{ID: id, Object: "file", Deleted: true})
	return nil
}

// listFiles serves GET /v1/files: newest first (order=asc: oldest first), with
// after/limit pagination and an optional purpose filter applied before the limit.
func (s *Server) listFiles(w http.ResponseWriter, r *http.Request, tenant string) error {
	p, err := parseListQuery(r, service.DefaultFileLimit)
	if err != nil {
		return err
	}
	page, err := s.svc.ListFiles(r.Context(), tenant, r.URL.Query().Get("purpose"), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(page, func(f sluice.File) string { return f.ID }))
	return nil
}

// list is an OpenAI list object.
type list[T any] struct {
	Object  string  `json:"object"` // always "list"
	Data    []T     `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

func newList[T any](page *service.Page[T], id func(T) string) list[T] {
	out := list[T]{Object: "list", Data: page.Data, HasMore: page.HasMore}
	if n := len(page.Data); n > 0 {
		first, last := id(page.Data[0]), id(page.Data[n-1])
		out.FirstID, out.LastID = &first, &last
	}
	return out
}

// parseListQuery reads after, limit (1..most; absent: the service's default) and order
// (asc or desc, the default).
func parseListQuery(r *http.Request, most int) (service.ListParams, error) {
	v := r.URL.Query()
	p := service.ListParams{After: v.Get("after")}
	switch v.Get("order") {
	case "", "desc":
	case "asc":
		p.Asc = true
	default:
		return p, invalid("order", "order must be 'asc' or 'desc', got '%s'.", v.Get("order"))
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > most {
			return p, invalid("limit", "limit must be an integer from 1 to %d, got '%s'.", most, l)
		}
		p.Limit = n
	}
	return p, nil
}

// invalid is an EINVALID error about a request parameter.
func invalid(param, format string, args ...any) error {
	e := service.Errorf(service.EINVALID, format, args...)
	e.Param = param
	return e
}
