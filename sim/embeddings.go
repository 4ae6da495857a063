package sim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// embeddingsRequest is what the simulator reads of an embeddings request.
type embeddingsRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     *int64          `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

// decodeEmbeddings reads an embeddings request and counts its inputs.
func (j *job) decodeEmbeddings(body []byte) *apiError {
	var req embeddingsRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return decodeError(err)
	}
	if e := j.setModel(req.Model); e != nil {
		return e
	}
	if first(req.Input) == 0 {
		return missingParam("input")
	}
	texts, counts, e := j.textsOrTokens(req.Input, "input")
	if e != nil {
		return e
	}
	if len(texts) == 0 {
		return invalidRequest("input", "empty_array", "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.")
	}
	for _, k := range counts {
		j.prompt += int64(k)
	}
	j.inputs = texts
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		j.base64 = true
	default:
		return invalidRequest("encoding_format", "invalid_value", "Invalid value: '%s'. Supported values are: 'float' and 'base64'.", req.EncodingFormat)
	}
	j.dims = defaultDimensions(req.Model)
	if req.Dimensions != nil {
		if *req.Dimensions < 1 || *req.Dimensions > int64(j.dims) {
			return invalidRequest("dimensions", "invalid_value", "Invalid 'dimensions': expected a value between 1 and %d, but got %d instead.", j.dims, *req.Dimensions)
		}
		j.dims = int(*req.Dimensions)
	}
	return nil
}

// defaultDimensions is the length of a model's embeddings.
func defaultDimensions(model string) int {
	if strings.HasPrefix(model, "text-embedding-3-large") {
		return 3072
	}
	return 1536
}

// appendEmbeddings appends the list of embeddings, one per input.
func (j *job) appendEmbeddings(b []byte) []byte {
	b = append(b, `{"object":"list","data":[`...)
	vec := make([]float32, j.dims)
	for i, in := range j.inputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding"`...)
		b = appendIntField(b, "index", int64(i))
		b = appendKey(b, "embedding")
		embed(vec, hashString(hashString(0, j.model), in))
		if j.base64 {
			b = appendBase64(b, vec)
		} else {
			b = appendFloats(b, vec)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	b = appendStringField(b, "model", j.model)
	b = append(appendKey(b, "usage"), '{')
	b = appendIntField(b, "prompt_tokens", j.prompt)
	b = appendIntField(b, "total_tokens", j.prompt)
	return append(b, "}}"...)
}

// embed fills vec with a unit vector derived from h: the same input always has the same
// embedding, different inputs almost orthogonal ones.
func embed(vec []float32, h uint64) {
	var norm float64
	for i := range vec {
		h = mix(h)
		x := float64(int64(h)) / (1 << 63) // uniform in [-1, 1)
		vec[i] = float32(x)
		norm += x * x
	}
	scale := 1 / math.Sqrt(norm)
	for i := range vec {
		vec[i] = float32(float64(vec[i]) * scale)
	}
}

// appendFloats appends vec as a JSON array of numbers in [-1, 1] with 8 decimals,
// formatted by hand: strconv would take most of the time of an embeddings request.
func appendFloats(b []byte, vec []float32) []byte {
	b = append(b, '[')
	for i, v := range vec {
		if i > 0 {
			b = append(b, ',')
		}
		x := float64(v)
		if x < 0 {
			b = append(b, '-')
			x = -x
		}
		f := int64(math.Round(x * 1e8))
		b = strconv.AppendInt(b, f/1e8, 10)
		b = append(b, '.')
		frac := f % 1e8
		for d := int64(1e7); d > 0; d /= 10 {
			b = append(b, byte('0'+frac/d%10))
		}
	}
	return append(b, ']')
}

// appendBase64 appends vec as OpenAI's base64 encoding: little-endian float32s.
func appendBase64(b []byte, vec []float32) []byte {
	raw := make([]byte, 4*len(vec))
	for i, v := range vec {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, raw)
	return append(b, '"')
}
