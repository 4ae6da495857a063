package service

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/internal/jsonl"
)

// Validation error codes, in errors.data of a batch that failed.
const (
	codeInvalidLine  = "invalid_request"
	codeDuplicateID  = "duplicate_custom_id"
	codeWrongURL     = "invalid_url"
	codeTooManyLines = "too_many_requests"
	codeFileTooLarge = "file_too_large"
	codeEmptyFile    = "empty_file"
	codeNoUpstream   = "model_not_found"
	codeMissingInput = "missing_input_file"
	// codeModelNotPriced fails a batch of a key with a USD budget that uses a model with
	// no price.
	codeModelNotPriced = "model_not_priced"
	checkStopEvery     = 1024 // lines between checks for a cancel
)

// validation is what validating an input file found.
type validation struct {
	total  int64
	models map[string]int64 // model → first line using it
	route  string
	errs   []sluice.BatchError
}

func (v *validation) fail(line int64, code, param, format string, args ...any) {
	if len(v.errs) >= maxValidationErrors {
		return
	}
	e := sluice.BatchError{Code: code, Message: fmt.Sprintf(format, args...)}
	if line > 0 {
		e.Line = ptr(line)
	}
	if param != "" {
		e.Param = ptr(param)
	}
	v.errs = append(v.errs, e)
}

// modelsInOrder returns the models the batch uses, in the order of their first lines.
func (v *validation) modelsInOrder() []string {
	models := slices.Collect(maps.Keys(v.models))
	slices.SortFunc(models, func(a, b string) int { return cmp.Compare(v.models[a], v.models[b]) })
	return models
}

// validate reads the batch's input file as a stream and checks every line, stopping
// early (errStopped) when stop reports true.
func (s *Service) validate(ctx context.Context, rec *batchRecord, stop func() bool) (*validation, error) {
	v := &validation{models: map[string]int64{}}
	in, err := s.storedFile(ctx, rec.InputFileID, rec.Tenant)
	if ErrorCode(err) == ENOTFOUND {
		v.fail(0, codeMissingInput, "input_file_id", "The input file %s no longer exists.", rec.InputFileID)
		return v, nil
	}
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	if in.Bytes > s.cfg.MaxBytes {
		v.fail(0, codeFileTooLarge, "input_file_id", "The input file has %d bytes; at most %d are allowed.", in.Bytes, s.cfg.MaxBytes)
		return v, nil
	}
	f, err := os.Open(s.filePath(in.Path))
	if err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	defer f.Close()
	if err := s.checkLines(v, f, rec.Endpoint, stop); err != nil {
		return nil, err
	}
	if v.total == 0 && len(v.errs) == 0 {
		v.fail(0, codeEmptyFile, "input_file_id", "The input file has no requests.")
	}
	if len(v.errs) == 0 {
		s.checkPriced(v, rec.Tenant)
	}
	if len(v.errs) == 0 {
		s.assignRoute(v)
	}
	return v, nil
}

// checkPriced fails the models with no price when the batch's key has a USD budget: they
// would be counted as free, and the budget would not hold.
func (s *Service) checkPriced(v *validation, tenant string) {
	if s.key(tenant).Budget.MaxCost <= 0 {
		return
	}
	models := v.modelsInOrder()
	for _, m := range models {
		if !s.priced(m) {
			v.fail(v.models[m], codeModelNotPriced, "body.model",
				"line %d: model %q has no price, and this key's budget is in USD: the operator must price it (--prices) before it can run under the budget.", v.models[m], m)
		}
	}
}

// priced reports whether model has a price (Config.Priced).
func (s *Service) priced(model string) bool {
	if s.cfg.Priced != nil {
		return s.cfg.Priced(model)
	}
	return s.cfg.Cost != nil && s.cfg.Cost(model, sluice.Usage{PromptTokens: 1e6, CompletionTokens: 1e6}) > 0
}

// checkLines checks each line of r: syntax and fields, url, unique custom_id, the line limit.
func (s *Service) checkLines(v *validation, r io.Reader, endpoint string, stop func() bool) error {
	rd := jsonl.NewReader(r, jsonl.DefaultMaxLine)
	ids := map[string]int64{}
	for n := 0; ; n++ {
		if n%checkStopEvery == 0 && stop() {
			return errStopped
		}
		line, data, err := rd.Next()
		var le *sluice.LineError
		if errors.As(err, &le) {
			v.total++
			v.fail(le.Line, codeInvalidLine, le.Field, "%s", le.Error())
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("validate: read input: %w", err)
		}
		v.total++
		if v.total > s.cfg.MaxLines {
			v.fail(line, codeTooManyLines, "", "The input file has more than the %d requests allowed.", s.cfg.MaxLines)
			return nil
		}
		req, lerr := jsonl.ParseRequest(line, data)
		if lerr != nil {
			v.fail(line, codeInvalidLine, lerr.Field, "%s", lerr.Error())
			continue
		}
		if req.URL != endpoint {
			v.fail(line, codeWrongURL, "url", "line %d: url is %s, but the batch's endpoint is %s.", line, req.URL, endpoint)
		}
		if first, dup := ids[req.CustomID]; dup {
			v.fail(line, codeDuplicateID, "custom_id", "line %d: custom_id %q is already used on line %d.", line, req.CustomID, first)
		} else {
			ids[req.CustomID] = line
		}
		var body struct {
			Model string `json:"model"`
		}
		if err := json.Unmarshal(req.Body, &body); err == nil {
			if _, seen := v.models[body.Model]; !seen {
				v.models[body.Model] = line
			}
		}
	}
}
