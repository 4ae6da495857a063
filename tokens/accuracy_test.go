package tokens_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice"
	"github.com/sluice-llm/sluice/sim"
	"github.com/sluice-llm/sluice/tokens"
)

// accuracyBar is the target: estimated prompt tokens within ±3% of the usage the
// upstream reports, in total and for every class of request.
const accuracyBar = 0.03

// texts is the corpus's raw material: prose in several scripts, emoji, names and code.
var texts = map[string]string{
	"en":    "The committee reviewed the quarterly figures on Tuesday and, after a long discussion about shipping delays, agreed to postpone the launch until the supplier confirms its new schedule.",
	"de":    "Die Straßenbahn fährt heute wegen Bauarbeiten nur bis zum Hauptbahnhof; Fahrgäste in Richtung Süden steigen dort in die Ersatzbusse um.",
	"fr":    "Pourriez-vous résumer ce rapport en trois phrases, en gardant les chiffres clés et en évitant le jargon technique ?",
	"es":    "¿Cuántas personas asistieron a la conferencia del año pasado, y qué porcentaje volvió este año?",
	"ru":    "Объясните простыми словами, чем отличается кэширование на стороне клиента от кэширования на стороне сервера.",
	"zh":    "请用三句话概括这篇文章的主要观点，并指出作者在结论部分提出的两个建议。",
	"ja":    "来週の会議の議題を箇条書きでまとめてください。予算の見直しと新しい採用計画を必ず含めてください。",
	"ko":    "이 문서를 한국어로 번역하고, 전문 용어는 괄호 안에 영어 원문을 함께 적어 주세요.",
	"ar":    "يرجى ترجمة الفقرة التالية إلى اللغة العربية مع الحفاظ على الأسماء والأرقام كما هي في النص الأصلي.",
	"he":    "אנא סכם את המאמר בפסקה אחת קצרה והדגש את המסקנה העיקרית של החוקרים.",
	"hi":    "कृपया इस लेख का सारांश तीन वाक्यों में लिखें और मुख्य आँकड़ों का उल्लेख करें।",
	"th":    "กรุณาสรุปบทความนี้เป็นภาษาไทยให้สั้นและเข้าใจง่าย",
	"vi":    "Hãy liệt kê ba ưu điểm và ba nhược điểm của việc làm việc từ xa.",
	"el":    "Μπορείτε να μου εξηγήσετε πώς λειτουργεί η φωτοσύνθεση με απλά λόγια;",
	"emoji": "Release day! 🚀🎉 Thanks to everyone 👩🏽‍💻👨🏻‍🔬🧑‍🚀 — see you in 🇯🇵 and 🇧🇷 next month ❤️‍🔥👍🏿",
	"mixed": "Order #48213 (qty: 12 × 3.75 €) shipped 2025-03-14T09:30:00Z to 東京都渋谷区; tracking id ZX-0091-ab, status=OK ✅",
	"go":    "```go\nfunc (s *Store) Close() error {\n\tif s.db == nil {\n\t\treturn nil\n\t}\n\treturn s.db.Close()\n}\n```",
	"py":    "```python\ndef mean(xs: list[float]) -> float:\n    \"\"\"Return the arithmetic mean.\"\"\"\n    if not xs:\n        raise ValueError(\"empty\")\n    return sum(xs) / len(xs)\n```",
	"sql":   "```sql\nSELECT customer_id, COUNT(*) AS orders, SUM(total) AS spent\nFROM orders\nWHERE created_at >= DATE '2024-01-01'\nGROUP BY customer_id\nHAVING COUNT(*) > 3\nORDER BY spent DESC;\n```",
	"json":  "{\n  \"id\": 7,\n  \"tags\": [\"alpha\", \"beta\"],\n  \"price\": {\"amount\": 19.99, \"currency\": \"USD\"},\n  \"active\": true\n}",
}

var languages = []string{"en", "de", "fr", "es", "ru", "zh", "ja", "ko", "ar", "he", "hi", "th", "vi", "el", "emoji", "mixed"}
var code = []string{"go", "py", "sql", "json"}

// chatModels alternate the two encodings: o200k_base and cl100k_base.
var chatModels = []string{"gpt-4o-mini", "gpt-4", "gpt-4.1", "gpt-3.5-turbo"}

// sample is one request of the corpus with its class.
type sample struct {
	class string
	req   sluice.Request
}

func chatReq(model string, messages []map[string]any, extra map[string]any) sluice.Request {
	body := map[string]any{"model": model, "messages": messages, "max_tokens": 64}
	for k, v := range extra {
		body[k] = v
	}
	return request(sluice.EndpointChatCompletions, body)
}

func request(url string, body map[string]any) sluice.Request {
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return sluice.Request{Method: "POST", URL: url, Body: b}
}

func msg(role, content string) map[string]any {
	return map[string]any{"role": role, "content": content}
}

// longText is about n paragraphs of varied prose in the given languages.
func longText(n int, langs []string) string {
	var b strings.Builder
	for i := range n {
		l := langs[i%len(langs)]
		fmt.Fprintf(&b, "%d. %s\n\n", i+1, texts[l])
		if i%5 == 4 {
			b.WriteString(texts[code[i%len(code)]] + "\n\n")
		}
	}
	return b.String()
}

// corpus builds the mixed corpus: every class on every chat model, in many languages.
func corpus() []sample {
	var out []sample
	add := func(class string, r sluice.Request) { out = append(out, sample{class, r}) }
	for mi, model := range chatModels {
		// Short prompts: one user message, where the per-message overhead is most of the count.
		for _, l := range languages {
			add("chat short", chatReq(model, []map[string]any{msg("user", texts[l])}, nil))
		}
		add("chat short", chatReq(model, []map[string]any{msg("user", "Hi")}, nil))
		add("chat short", chatReq(model, []map[string]any{msg("user", "2+2?")}, nil))
		// Long prompts: thousands of tokens.
		add("chat long", chatReq(model, []map[string]any{
			msg("system", "You are a careful analyst. Answer in the language of the question."),
			msg("user", longText(60, languages[mi*3:])),
		}, nil))
		add("chat long", chatReq(model, []map[string]any{msg("user", longText(40, []string{"en", "zh", "ar"}))}, nil))
		// System, user and assistant turns, in many languages.
		for i, l := range languages {
			next := languages[(i+1)%len(languages)]
			add("multi-turn", chatReq(model, []map[string]any{
				msg("system", "You translate between languages and keep names unchanged."),
				msg("user", texts[l]),
				msg("assistant", texts[next]),
				msg("user", "Now the same, shorter: "+texts[l]),
			}, nil))
		}
		// Named participants: every message carries a name.
		add("named", chatReq(model, []map[string]any{
			{"role": "system", "content": "Summarise the thread.", "name": "moderator"},
			{"role": "user", "content": "Can we ship on Friday?", "name": "alice_smith"},
			{"role": "user", "content": "Only if QA signs off.", "name": "bob-jones"},
			{"role": "assistant", "content": "Noted.", "name": "helper_bot"},
			{"role": "user", "content": "QA is done ✅", "name": "carol"},
		}, nil))
		add("named", chatReq(model, []map[string]any{
			{"role": "system", "content": texts["ja"], "name": "planner"},
			{"role": "user", "content": texts["ko"], "name": "minji_kim"},
		}, nil))
		// Code blocks.
		for _, c := range code {
			add("code", chatReq(model, []map[string]any{
				msg("system", "You review code and reply with a corrected version."),
				msg("user", "Review this:\n\n"+texts[c]),
			}, nil))
		}
		// Multi-part content: text parts and images.
		add("multi-part", chatReq(model, []map[string]any{{"role": "user", "content": []map[string]any{
			{"type": "text", "text": "What is in this picture?"},
			{"type": "image_url", "image_url": map[string]any{"url": "https://example.com/cat.png"}},
		}}}, nil))
		add("multi-part", chatReq(model, []map[string]any{{"role": "user", "content": []map[string]any{
			{"type": "text", "text": texts["fr"]},
			{"type": "text", "text": texts["zh"]},
			{"type": "image_url", "image_url": map[string]any{"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
		}}}, nil))
		// Tools and tool calls.
		add("tools", chatReq(model, []map[string]any{
			msg("user", "What's the weather in Zürich?"),
			{"role": "assistant", "content": nil, "tool_calls": []map[string]any{{"id": "call_1", "type": "function",
				"function": map[string]any{"name": "get_weather", "arguments": `{"city":"Zürich"}`}}}},
			{"role": "tool", "tool_call_id": "call_1", "content": `{"temp_c": 4, "sky": "overcast"}`},
		}, map[string]any{"tools": []map[string]any{{"type": "function", "function": map[string]any{
			"name": "get_weather", "description": "Current weather for a city",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
		}}}}))
	}
	// Embeddings: one string, many strings, token ids.
	for _, model := range []string{"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"} {
		for _, l := range languages {
			add("embeddings", request(sluice.EndpointEmbeddings, map[string]any{"model": model, "input": texts[l]}))
		}
		add("embeddings", request(sluice.EndpointEmbeddings, map[string]any{"model": model, "input": []string{texts["en"], texts["ru"], texts["go"], texts["emoji"]}}))
		add("embeddings", request(sluice.EndpointEmbeddings, map[string]any{"model": model, "input": []int{9906, 1917, 0, 42}}))
		add("embeddings", request(sluice.EndpointEmbeddings, map[string]any{"model": model, "input": longText(30, languages)}))
	}
	// Legacy completions.
	for _, l := range languages {
		add("completions", request(sluice.EndpointCompletions, map[string]any{"model": "gpt-3.5-turbo-instruct", "prompt": texts[l], "max_tokens": 32}))
	}
	add("completions", request(sluice.EndpointCompletions, map[string]any{"model": "gpt-3.5-turbo-instruct", "prompt": []string{texts["py"], texts["he"]}}))
	// The Responses API: instructions and input, as a string or as items.
	for i, l := range languages {
		model := chatModels[i%len(chatModels)]
		add("responses", request(sluice.EndpointResponses, map[string]any{"model": model, "instructions": "Be brief.", "input": texts[l]}))
		add("responses", request(sluice.EndpointResponses, map[string]any{"model": model, "input": []map[string]any{
			{"role": "user", "content": []map[string]any{{"type": "input_text", "text": texts[l]}}},
			{"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": `{"q":"` + l + `"}`},
			{"type": "function_call_output", "call_id": "c1", "output": texts["json"]},
		}}))
	}
	return out
}

// simPromptTokens sends req to the simulator and returns the prompt tokens its answer
// reports.
func simPromptTokens(t *testing.T, s *sim.Server, req sluice.Request) int64 {
	t.Helper()
	rec := httptest.NewRecorder()
	hr := httptest.NewRequest(http.MethodPost, req.URL, strings.NewReader(string(req.Body)))
	hr.Header.Set("Content-Type", "application/json")
	s.ServeHTTP(rec, hr)
	if rec.Code != http.StatusOK {
		t.Fatalf("simulator answered %d to %s: %s", rec.Code, req.Body, rec.Body)
	}
	var answer struct {
		Usage struct {
			PromptTokens *int64 `json:"prompt_tokens"`
			InputTokens  *int64 `json:"input_tokens"` // the Responses API's name
		} `json:"usage"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatalf("simulator answer: %v: %s", err, rec.Body)
	}
	switch {
	case answer.Usage.PromptTokens != nil:
		return *answer.Usage.PromptTokens
	case answer.Usage.InputTokens != nil:
		return *answer.Usage.InputTokens
	}
	t.Fatalf("simulator answer has no usage: %s", rec.Body)
	return 0
}

// measured is a corpus request with the simulator's count.
type measured struct {
	sample
	actual int64
}

// tally is estimated against actual tokens over a set of requests.
type tally struct {
	requests          int
	estimated, actual int64
	worst             float64 // the largest relative error of one request
}

func (t *tally) add(est, actual int64) {
	t.requests++
	t.estimated += est
	t.actual += actual
	t.worst = max(t.worst, math.Abs(relErr(est, actual)))
}

func (t *tally) err() float64 { return relErr(t.estimated, t.actual) }

func relErr(est, actual int64) float64 {
	if actual == 0 {
		if est == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return float64(est-actual) / float64(actual)
}

// score estimates every request with estimate and tallies the result by class and in
// total (class "").
func score(t *testing.T, data []measured, estimate func(sluice.Request) int64) map[string]*tally {
	t.Helper()
	out := map[string]*tally{"": {}}
	for _, m := range data {
		est := estimate(m.req)
		if out[m.class] == nil {
			out[m.class] = &tally{}
		}
		out[m.class].add(est, m.actual)
		out[""].add(est, m.actual)
	}
	return out
}

// outside lists the classes (and "total") whose error is beyond the bar.
func outside(tallies map[string]*tally) []string {
	var bad []string
	for _, c := range slices.Sorted(maps.Keys(tallies)) {
		if math.Abs(tallies[c].err()) > accuracyBar {
			name := c
			if name == "" {
				name = "total"
			}
			bad = append(bad, fmt.Sprintf("%s %+.1f%%", name, 100*tallies[c].err()))
		}
	}
	return bad
}

// measure sends the corpus through the simulator, and checks that its counter agrees
// with the answers.
func measure(t *testing.T) []measured {
	t.Helper()
	s := sim.New(sim.Config{})
	defer s.Close()
	var data []measured
	var sum int64
	for _, smp := range corpus() {
		n := simPromptTokens(t, s, smp.req)
		data = append(data, measured{smp, n})
		sum += n
	}
	if st := s.Stats(); st.OK != int64(len(data)) || st.PromptTokens != sum {
		t.Fatalf("simulator stats: %d answers, %d prompt tokens; the answers said %d, %d", st.OK, st.PromptTokens, len(data), sum)
	}
	return data
}

func estimated(t *testing.T) func(sluice.Request) int64 {
	return func(r sluice.Request) int64 {
		est, err := tokens.Default().Estimate(&r)
		if err != nil {
			t.Fatalf("estimate %s: %v", r.Body, err)
		}
		return est.PromptTokens
	}
}

// TestEstimateAccuracy checks the estimator against the prompt tokens the simulator
// reports for a mixed corpus (16 languages and scripts, emoji, code, short and long
// prompts, system/user/assistant turns, names, multi-part content with images, tools,
// embeddings, completions and the Responses API), within ±3% in total and per class.
func TestEstimateAccuracy(t *testing.T) {
	t.Parallel()
	data := measure(t)
	tallies := score(t, data, estimated(t))
	t.Logf("%-12s %8s %10s %10s %8s %10s", "class", "requests", "estimated", "reported", "error", "worst req")
	for _, c := range slices.Sorted(maps.Keys(tallies)) {
		tl := tallies[c]
		name := c
		if name == "" {
			name = "total"
		}
		t.Logf("%-12s %8d %10d %10d %+7.2f%% %9.2f%%", name, tl.requests, tl.estimated, tl.actual, 100*tl.err(), 100*tl.worst)
	}
	if bad := outside(tallies); len(bad) > 0 {
		t.Errorf("estimates beyond ±%.0f%% of the simulator's usage: %s", 100*accuracyBar, strings.Join(bad, ", "))
	}
	if tallies[""].actual < 50_000 {
		t.Errorf("the corpus holds %d prompt tokens: too few to measure", tallies[""].actual)
	}
}

// TestEstimateAccuracyCatchesMistakes checks that the corpus and the bar can fail: each
// estimator below makes a mistake a real one could (drops the per-message overhead,
// the system message, names, images; uses one encoding for every model; counts only the
// text), and each must land outside ±3% in some class.
func TestEstimateAccuracyCatchesMistakes(t *testing.T) {
	t.Parallel()
	data := measure(t)
	good := estimated(t)
	mutants := map[string]func(sluice.Request) int64{
		"no per-message overhead": func(r sluice.Request) int64 {
			n := good(r)
			if msgs := messages(t, r); msgs > 0 {
				n -= int64(3 * msgs)
			}
			return n
		},
		"no reply primer": func(r sluice.Request) int64 {
			if r.URL == sluice.EndpointChatCompletions {
				return good(r) - 3
			}
			return good(r)
		},
		"system message dropped": func(r sluice.Request) int64 {
			return good(edit(t, r, func(b map[string]any) {
				if ms, ok := b["messages"].([]any); ok {
					b["messages"] = slices.DeleteFunc(ms, func(m any) bool { return m.(map[string]any)["role"] == "system" })
				}
			}))
		},
		"names ignored": func(r sluice.Request) int64 {
			return good(edit(t, r, func(b map[string]any) {
				if ms, ok := b["messages"].([]any); ok {
					for _, m := range ms {
						delete(m.(map[string]any), "name")
					}
				}
			}))
		},
		"images ignored": func(r sluice.Request) int64 {
			return good(edit(t, r, func(b map[string]any) {
				ms, _ := b["messages"].([]any)
				for _, m := range ms {
					if parts, ok := m.(map[string]any)["content"].([]any); ok {
						m.(map[string]any)["content"] = slices.DeleteFunc(parts, func(p any) bool { return p.(map[string]any)["type"] == "image_url" })
					}
				}
			}))
		},
		"o200k_base for every model": func(r sluice.Request) int64 {
			return good(edit(t, r, func(b map[string]any) {
				if tokens.ForModel(b["model"].(string)).Name() == tokens.Cl100kBase {
					b["model"] = "gpt-4o"
				}
			}))
		},
		"chat overhead on embeddings": func(r sluice.Request) int64 {
			if r.URL == sluice.EndpointEmbeddings {
				return good(r) + 3 + 3 + 1
			}
			return good(r)
		},
	}
	for _, name := range slices.Sorted(maps.Keys(mutants)) {
		bad := outside(score(t, data, mutants[name]))
		if len(bad) == 0 {
			t.Errorf("an estimator with the mistake %q passes the accuracy test", name)
			continue
		}
		t.Logf("%-28s caught: %s", name, strings.Join(bad, ", "))
	}
}

// messages is how many messages (chat) or input items (responses) a request has, counting
// a Responses API instructions field as one.
func messages(t *testing.T, r sluice.Request) int {
	var b struct {
		Messages     []json.RawMessage `json:"messages"`
		Input        json.RawMessage   `json:"input"`
		Instructions string            `json:"instructions"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatal(err)
	}
	switch r.URL {
	case sluice.EndpointChatCompletions:
		return len(b.Messages)
	case sluice.EndpointResponses:
		n := 0
		if b.Instructions != "" {
			n++
		}
		var items []json.RawMessage
		if json.Unmarshal(b.Input, &items) == nil {
			return n + len(items)
		}
		return n + 1
	}
	return 0
}

// edit returns r with its body changed by fn.
func edit(t *testing.T, r sluice.Request, fn func(map[string]any)) sluice.Request {
	var b map[string]any
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatal(err)
	}
	fn(b)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	r.Body = out
	return r
}
