package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sluice-llm/sluice"
)

const (
	maxFormField     = 1 << 10 // bytes of a non-file multipart field
	defaultFileLimit = 10_000  // files listed when no limit is given, as OpenAI does
)

// createFile serves POST /v1/files: the file part is streamed to disk.
func (s *Server) createFile(w http.ResponseWriter, r *http.Request, owner string) error {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return invalid("file", "Expected a multipart/form-data body with a file: %v", err)
	}
	var (
		purpose string
		rec     *fileRecord
	)
	defer func() { // a failed upload leaves nothing behind
		if rec != nil && err != nil {
			os.Remove(s.filePath(rec.Path))
		}
	}()
	for {
		part, perr := mr.NextPart()
		if errors.Is(perr, io.EOF) {
			break
		}
		if perr != nil {
			err = perr
			return s.uploadError(err)
		}
		switch part.FormName() {
		case "purpose":
			b, rerr := io.ReadAll(io.LimitReader(part, maxFormField))
			if rerr != nil {
				err = rerr
				return s.uploadError(err)
			}
			purpose = string(b)
		case "file":
			if rec != nil {
				err = invalid("file", "Expected one file, got several.")
				return err
			}
			rec, err = s.storeUpload(part, owner)
			if err != nil {
				return s.uploadError(err)
			}
		}
		part.Close()
	}
	switch {
	case rec == nil:
		err = invalid("file", "Missing the file to upload.")
	case purpose == "":
		err = invalid("purpose", "Missing the purpose of the file.")
	case purpose != sluice.PurposeBatch:
		err = invalid("purpose", "Only files with purpose 'batch' can be uploaded here, got '%s'.", purpose)
	}
	if err != nil {
		return err
	}
	rec.Purpose = purpose
	if err = s.saveFile(r.Context(), rec); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rec.File)
	return nil
}

// uploadError maps an error of reading the upload.
func (s *Server) uploadError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return s.fileTooLarge()
	}
	return err
}

func (s *Server) fileTooLarge() *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error", param: "file", code: "file_too_large",
		msg: fmt.Sprintf("The file is larger than the %d bytes allowed.", s.cfg.MaxBytes)}
}

// storeUpload copies one multipart file part to a new file in the files directory.
func (s *Server) storeUpload(part io.Reader, owner string) (*fileRecord, error) {
	name := ""
	if p, ok := part.(interface{ FileName() string }); ok {
		name = filepath.Base(p.FileName())
	}
	if name == "" || name == "." || name == "/" {
		name = "upload.jsonl"
	}
	rec := &fileRecord{
		File:  sluice.File{ID: newFileID(), Object: "file", CreatedAt: now(), Filename: name, Status: "processed"},
		Owner: owner,
	}
	rec.Path = rec.ID + ".jsonl"
	f, err := os.OpenFile(s.filePath(rec.Path), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(part, s.cfg.MaxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > s.cfg.MaxBytes {
		err = s.fileTooLarge()
	}
	if err != nil {
		os.Remove(s.filePath(rec.Path))
		return nil, err
	}
	rec.Bytes = n
	return rec, nil
}

func (s *Server) filePath(name string) string { return filepath.Join(s.cfg.FilesDir, name) }

func (s *Server) saveFile(ctx context.Context, rec *fileRecord) error {
	doc, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("save file: %w", err)
	}
	status := ""
	if rec.Deleted {
		status = statusDeleted
	}
	return s.cfg.Store.SaveObject(ctx, kindFile, rec.ID, rec.Owner, status, doc)
}

// file returns owner's file with id, or a 404 (also when the client deleted it).
func (s *Server) file(ctx context.Context, id, owner string) (*fileRecord, error) {
	rec, err := s.storedFile(ctx, id, owner)
	if err == nil && rec.Deleted {
		return nil, notFound("file", id)
	}
	return rec, err
}

// storedFile returns owner's file with id even when the client deleted it while a batch
// reads it, or a 404.
func (s *Server) storedFile(ctx context.Context, id, owner string) (*fileRecord, error) {
	doc, err := s.cfg.Store.Object(ctx, kindFile, id, owner)
	if errors.Is(err, sluice.ErrNotFound) {
		return nil, notFound("file", id)
	}
	if err != nil {
		return nil, err
	}
	return decodeRecord[fileRecord](doc)
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request, owner string) error {
	rec, err := s.file(r.Context(), r.PathValue("id"), owner)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rec.File)
	return nil
}

// fileContent serves GET /v1/files/{id}/content, streamed from disk.
func (s *Server) fileContent(w http.ResponseWriter, r *http.Request, owner string) error {
	rec, err := s.file(r.Context(), r.PathValue("id"), owner)
	if err != nil {
		return err
	}
	f, err := os.Open(s.filePath(rec.Path))
	if err != nil {
		return fmt.Errorf("file content %s: %w", rec.ID, err)
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(rec.Bytes, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, f) // the client may go away; nothing to tell it then
	return nil
}

// deleteFile serves DELETE /v1/files/{id}. A file that a batch still running reads is
// only hidden: its content stays until the last such batch ends (releaseInput), so
// that a restart can still finish the batch and write the expired lines of its input.
func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request, owner string) error {
	ctx := r.Context()
	s.mu.Lock() // serialised with batches starting (start) and ending (update)
	defer s.mu.Unlock()
	rec, err := s.file(ctx, r.PathValue("id"), owner)
	if err != nil {
		return err
	}
	inUse, err := s.inputInUse(ctx, rec.ID, "")
	if err != nil {
		return err
	}
	if inUse {
		rec.Deleted = true
		err = s.saveFile(ctx, rec)
	} else {
		err = s.removeFile(ctx, rec)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deleted{ID: rec.ID, Object: "file", Deleted: true})
	return nil
}

// removeFile deletes a file's object and content.
func (s *Server) removeFile(ctx context.Context, rec *fileRecord) error {
	if err := s.cfg.Store.DeleteObject(ctx, kindFile, rec.ID, rec.Owner); errors.Is(err, sluice.ErrNotFound) {
		return notFound("file", rec.ID)
	} else if err != nil {
		return err
	}
	if err := os.Remove(s.filePath(rec.Path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.cfg.Logger.Warn("delete file content", "file", rec.ID, "err", err)
	}
	return nil
}

// inputInUse reports whether a batch that is not final, other than batch except, reads
// file id.
func (s *Server) inputInUse(ctx context.Context, id, except string) (bool, error) {
	docs, err := s.cfg.Store.ObjectsWithStatus(ctx, kindBatch, activeStatuses...)
	if err != nil {
		return false, err
	}
	for _, doc := range docs {
		b, err := decodeRecord[batchRecord](doc)
		if err != nil {
			return false, err
		}
		if b.InputFileID == id && b.ID != except {
			return true, nil
		}
	}
	return false, nil
}

// releaseInput removes the input of batch rec, which has just become final, when its
// client deleted it and no other batch still reads it. A failure is only logged: the
// next start removes what is left (purgeDeleted). s.mu must be held.
func (s *Server) releaseInput(ctx context.Context, rec *batchRecord) {
	in, err := s.storedFile(ctx, rec.InputFileID, rec.Owner)
	if err != nil || !in.Deleted {
		return
	}
	inUse, err := s.inputInUse(ctx, in.ID, rec.ID)
	if err == nil && !inUse {
		err = s.removeFile(ctx, in)
	}
	if err != nil {
		s.cfg.Logger.Warn("remove deleted input", "file", in.ID, "err", err)
	}
}

// purgeDeleted removes the files their clients deleted that no batch reads any more (a
// server stopped between a batch's end and the removal leaves them).
func (s *Server) purgeDeleted(ctx context.Context) error {
	docs, err := s.cfg.Store.ObjectsWithStatus(ctx, kindFile, statusDeleted)
	if err != nil {
		return fmt.Errorf("purge deleted files: %w", err)
	}
	for _, doc := range docs {
		rec, err := decodeRecord[fileRecord](doc)
		if err != nil {
			return fmt.Errorf("purge deleted files: %w", err)
		}
		inUse, err := s.inputInUse(ctx, rec.ID, "")
		if err == nil && !inUse {
			err = s.removeFile(ctx, rec)
		}
		if err != nil {
			return fmt.Errorf("purge deleted files: %w", err)
		}
	}
	return nil
}

// listFiles serves GET /v1/files: newest first (order=asc: oldest first), with
// after/limit pagination and an optional purpose filter applied before the limit.
func (s *Server) listFiles(w http.ResponseWriter, r *http.Request, owner string) error {
	q, err := parseListQuery(r, defaultFileLimit, defaultFileLimit)
	if err != nil {
		return err
	}
	docs, more, err := s.cfg.Store.ListObjects(r.Context(), kindFile, owner, q.after, r.URL.Query().Get("purpose"), q.asc, q.limit)
	if errors.Is(err, sluice.ErrNotFound) {
		return invalid("after", "No file found with id '%s'.", q.after)
	}
	if err != nil {
		return err
	}
	out := list[sluice.File]{Object: "list", Data: make([]sluice.File, 0, len(docs)), HasMore: more}
	for _, doc := range docs {
		rec, err := decodeRecord[fileRecord](doc)
		if err != nil {
			return err
		}
		out.Data = append(out.Data, rec.File)
	}
	if n := len(out.Data); n > 0 {
		out.FirstID, out.LastID = &out.Data[0].ID, &out.Data[n-1].ID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// listQuery is the pagination of a list request.
type listQuery struct {
	after string
	limit int
	asc   bool
}

// parseListQuery reads after, limit (def when absent, 1..max) and order (asc or desc,
// the default).
func parseListQuery(r *http.Request, def, max int) (listQuery, error) {
	v := r.URL.Query()
	q := listQuery{after: v.Get("after"), limit: def}
	switch v.Get("order") {
	case "", "desc":
	case "asc":
		q.asc = true
	default:
		return q, invalid("order", "order must be 'asc' or 'desc', got '%s'.", v.Get("order"))
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > max {
			return q, invalid("limit", "limit must be an integer from 1 to %d, got '%s'.", max, l)
		}
		q.limit = n
	}
	return q, nil
}
