package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sluice-llm/sluice"
)

// File list sizes.
const (
	// DefaultFileLimit is how many files a list returns when no limit is given, as
	// OpenAI does; it is also the most one list returns.
	DefaultFileLimit = 10_000
)

// Upload is the content of a file written to the files directory and not yet a file:
// Commit makes it one, Discard removes it.
type Upload struct {
	s   *Service
	rec *fileRecord
}

// UploadFile writes content, as a file named filename of tenant's, to the files
// directory. Content longer than Config.MaxBytes is ETOOLARGE and leaves nothing behind.
// The caller then commits it with its purpose, or discards it.
func (s *Service) UploadFile(tenant, filename string, content io.Reader) (*Upload, error) {
	name := filepath.Base(filename)
	if name == "" || name == "." || name == "/" {
		name = "upload.jsonl"
	}
	rec := &fileRecord{
		File:   sluice.File{ID: newFileID(), Object: "file", CreatedAt: s.now(), Filename: name, Status: "processed"},
		Tenant: tenant,
	}
	rec.Path = rec.ID + ".jsonl"
	f, err := os.OpenFile(s.filePath(rec.Path), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(content, s.cfg.MaxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > s.cfg.MaxBytes {
		err = s.FileTooLarge()
	}
	if err != nil {
		os.Remove(s.filePath(rec.Path))
		return nil, err
	}
	rec.Bytes = n
	return &Upload{s: s, rec: rec}, nil
}

// FileTooLarge is the ETOOLARGE Error of a file larger than Config.MaxBytes, for
// adapters that find out before the service does (a request body cut off at its limit).
func (s *Service) FileTooLarge() *Error {
	return &Error{Code: ETOOLARGE, Param: "file", Reason: "file_too_large",
		Message: fmt.Sprintf("The file is larger than the %d bytes allowed.", s.cfg.MaxBytes)}
}

// Commit checks the purpose of the uploaded file and stores it: it is then a file of its
// tenant's. On an error the upload is discarded.
func (u *Upload) Commit(ctx context.Context, purpose string) (*sluice.File, error) {
	var err error
	switch {
	case purpose == "":
		err = invalid("purpose", "Missing the purpose of the file.")
	case purpose != sluice.PurposeBatch:
		err = invalid("purpose", "Only files with purpose 'batch' can be uploaded here, got '%s'.", purpose)
	}
	if err == nil {
		u.rec.Purpose = purpose
		err = u.s.saveFile(ctx, u.rec)
	}
	if err != nil {
		u.Discard()
		return nil, err
	}
	return &u.rec.File, nil
}

// Discard removes an upload that was not committed.
func (u *Upload) Discard() { os.Remove(u.s.filePath(u.rec.Path)) }

// CreateFile stores content as a new file of tenant's with purpose ("batch").
func (s *Service) CreateFile(ctx context.Context, tenant, purpose, filename string, content io.Reader) (*sluice.File, error) {
	up, err := s.UploadFile(tenant, filename, content)
	if err != nil {
		return nil, err
	}
	return up.Commit(ctx, purpose)
}

func (s *Service) filePath(name string) string { return filepath.Join(s.cfg.FilesDir, name) }

func (s *Service) saveFile(ctx context.Context, rec *fileRecord) error {
	doc, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("save file: %w", err)
	}
	status := ""
	if rec.Deleted {
		status = statusDeleted
	}
	return s.cfg.Store.SaveObject(ctx, kindFile, rec.ID, rec.Tenant, status, doc)
}

// file returns tenant's file with id, or ENOTFOUND (also when the client deleted it).
func (s *Service) file(ctx context.Context, id, tenant string) (*fileRecord, error) {
	if tenant == "" {
		return nil, notFound("file", id)
	}
	rec, err := s.storedFile(ctx, id, tenant)
	if err == nil && rec.Deleted {
		return nil, notFound("file", id)
	}
	return rec, err
}

// storedFile returns tenant's file with id even when the client deleted it while a batch
// reads it, or ENOTFOUND.
func (s *Service) storedFile(ctx context.Context, id, tenant string) (*fileRecord, error) {
	doc, err := s.cfg.Store.Object(ctx, kindFile, id, tenant)
	if errors.Is(err, sluice.ErrNotFound) {
		return nil, notFound("file", id)
	}
	if err != nil {
		return nil, err
	}
	return decodeRecord[fileRecord](doc)
}

// File returns tenant's file with id, or ENOTFOUND.
func (s *Service) File(ctx context.Context, tenant, id string) (*sluice.File, error) {
	rec, err := s.file(ctx, id, tenant)
	if err != nil {
		return nil, err
	}
	return &rec.File, nil
}

// FileContent opens the content of tenant's file with id; the caller closes it. The
// file's Bytes is the content's length.
func (s *Service) FileContent(ctx context.Context, tenant, id string) (*sluice.File, io.ReadCloser, error) {
	rec, err := s.file(ctx, id, tenant)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(s.filePath(rec.Path))
	if err != nil {
		return nil, nil, fmt.Errorf("file content %s: %w", rec.ID, err)
	}
	return &rec.File, f, nil
}

// DeleteFile deletes tenant's file with id. A file that a batch still running reads is
// only hidden: its content stays until the last such batch ends (releaseInput), so
// that a restart can still finish the batch and write the expired lines of its input.
//
// Replicas on one store start and end batches and delete files without a lock between
// them, so both sides write before they read (see inputGone): the deletion hides the file
// (a conditional write, which of two deletions only one wins) before it looks for
// batches reading it, and a batch is saved before its input is looked at again. Of a
// deletion and a start racing, at least one sees the other: the deletion keeps the
// content for the batch, or the start gives the batch up.
func (s *Service) DeleteFile(ctx context.Context, tenant, id string) error {
	rec, err := s.file(ctx, id, tenant)
	if err != nil {
		return err
	}
	rec.Deleted = true
	doc, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("delete file: %w", err)
	}
	hidden, err := s.cfg.Store.SwapObject(ctx, kindFile, rec.ID, "", statusDeleted, doc)
	if err != nil {
		return err
	}
	if !hidden { // deleted at once by another request, here or at another server
		return notFound("file", id)
	}
	inUse, err := s.inputInUse(ctx, rec.ID, "")
	if err != nil || inUse {
		return err
	}
	if err := s.removeFile(ctx, rec); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// removeFile deletes a file's object and content.
func (s *Service) removeFile(ctx context.Context, rec *fileRecord) error {
	if err := s.cfg.Store.DeleteObject(ctx, kindFile, rec.ID, rec.Tenant); errors.Is(err, sluice.ErrNotFound) {
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
func (s *Service) inputInUse(ctx context.Context, id, except string) (bool, error) {
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

// releaseInput removes the input of batch rec, which has just become final (or was given
// up as it started: inputGone), when its client deleted it and no other batch still
// reads it. A failure is only logged: the next start removes what is left
// (purgeDeleted).
func (s *Service) releaseInput(ctx context.Context, rec *batchRecord) {
	in, err := s.storedFile(ctx, rec.InputFileID, rec.Tenant)
	if err != nil || !in.Deleted {
		return
	}
	inUse, err := s.inputInUse(ctx, in.ID, rec.ID)
	if err == nil && !inUse {
		err = s.removeFile(ctx, in)
	}
	if err != nil && !isNotFound(err) { // not found: another server removed it first
		s.cfg.Logger.Warn("remove deleted input", "file", in.ID, "err", err)
	}
}

// purgeDeleted removes the files their clients deleted that no batch reads any more (a
// server stopped between a batch's end and the removal leaves them).
func (s *Service) purgeDeleted(ctx context.Context) error {
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
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("purge deleted files: %w", err)
		}
	}
	return nil
}

// ListFiles returns a page of tenant's files, newest first (p.Asc: oldest first), only
// those with purpose when it is not "" (the filter applies before the limit). An After
// that names no file of the tenant's is EINVALID.
func (s *Service) ListFiles(ctx context.Context, tenant, purpose string, p ListParams) (*Page[sluice.File], error) {
	limit, err := listLimit(p.Limit, DefaultFileLimit, DefaultFileLimit)
	if err != nil {
		return nil, err
	}
	docs, more, err := s.cfg.Store.ListObjects(ctx, kindFile, tenant, p.After, purpose, p.Asc, limit)
	if errors.Is(err, sluice.ErrNotFound) {
		return nil, invalid("after", "No file found with id '%s'.", p.After)
	}
	if err != nil {
		return nil, err
	}
	out := &Page[sluice.File]{Data: make([]sluice.File, 0, len(docs)), HasMore: more}
	for _, doc := range docs {
		rec, err := decodeRecord[fileRecord](doc)
		if err != nil {
			return nil, err
		}
		out.Data = append(out.Data, rec.File)
	}
	return out, nil
}
