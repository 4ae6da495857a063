package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schema is a compiled JSON Schema that answers are validated against.
type schema struct {
	s *jsonschema.Schema
}

// compileSchema compiles a JSON Schema document. References to other documents are not
// loaded: a schema must be self-contained.
func compileSchema(doc []byte) (*schema, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	const loc = "sluice:///schema.json"
	if err := c.AddResource(loc, v); err != nil {
		return nil, err
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, oneLine(err)
	}
	return &schema{s: s}, nil
}

// noLoader refuses to load referenced documents.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema references %s: only self-contained schemas are supported", url)
}

// validate checks a JSON answer against the schema.
func (s *schema) validate(answer []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(answer))
	if err != nil {
		return err
	}
	if err := s.s.Validate(v); err != nil {
		return oneLine(err)
	}
	return nil
}

// oneLine flattens the library's indented, multi-line messages.
func oneLine(err error) error {
	var ve *jsonschema.ValidationError
	msg := err.Error()
	if errors.As(err, &ve) {
		// The first line names the schema file, which means nothing to a user.
		if _, rest, ok := strings.Cut(msg, "\n"); ok {
			msg = rest
		}
	}
	return errors.New(strings.Join(strings.Fields(msg), " "))
}

// parseJSONAnswer reads an answer that must be JSON: a ```json fence around it is
// removed; anything else around the value makes it invalid. It returns the value
// compacted.
func parseJSONAnswer(text string) (json.RawMessage, error) {
	t := strings.TrimSpace(text)
	if strings.HasPrefix(t, "```") && strings.HasSuffix(t, "```") && len(t) >= 6 {
		t = strings.TrimSpace(t[3 : len(t)-3])
		t = strings.TrimPrefix(t, "json")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(t)); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return buf.Bytes(), nil
}
