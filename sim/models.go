package sim

// DefaultModels returns the models a Server serves when Config.Models is empty.
func DefaultModels() []string {
	return []string{
		"gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
		"gpt-5", "gpt-5-mini", "gpt-5-nano", "o3", "o3-mini", "o4-mini",
		"gpt-4-turbo", "gpt-4", "gpt-3.5-turbo", "gpt-3.5-turbo-instruct",
		"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
	}
}

// serves reports whether model is served: one of the configured models, or a dated
// snapshot of one ("gpt-4o-mini-2024-07-18").
func (s *Server) serves(model string) bool {
	if s.models[model] {
		return true
	}
	const date = len("-2006-01-02")
	if len(model) <= date {
		return false
	}
	base, suffix := model[:len(model)-date], model[len(model)-date:]
	for i := range len(suffix) {
		c := suffix[i]
		if i == 0 || i == 5 || i == 8 {
			if c != '-' {
				return false
			}
		} else if c < '0' || c > '9' {
			return false
		}
	}
	return s.models[base]
}

// appendModelList appends the GET /v1/models answer.
func (s *Server) appendModelList(b []byte) []byte {
	b = append(b, `{"object":"list","data":[`...)
	for i, m := range s.cfg.Models {
		if i > 0 {
			b = append(b, ',')
		}
		b = s.appendModel(b, m)
	}
	return append(b, "]}"...)
}

// appendModel appends a model object.
func (s *Server) appendModel(b []byte, model string) []byte {
	b = appendStringField(append(b, '{'), "id", model)
	b = appendStringField(b, "object", "model")
	b = appendIntField(b, "created", 1700000000)
	b = appendStringField(b, "owned_by", "sluice-sim")
	return append(b, '}')
}
