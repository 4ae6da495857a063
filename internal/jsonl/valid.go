package jsonl

// Object iterates over the members of a JSON object, for packages that read text
// ParseRequest has accepted (a request's Body). Like the helpers it wraps, it does not
// check the text and must never see unchecked input.
type Object struct{ o object }

// NewObject starts an iteration over obj, valid JSON text that begins with '{'.
func NewObject(obj []byte) Object { return Object{newObject(obj, 0)} }

// Next returns the next member's key, as raw string content (escapes not decoded), and
// its value, as raw JSON text. ok is false after the last member.
func (o *Object) Next() (key, val []byte, ok bool) { return o.o.next() }

// Array iterates over the elements of a JSON array, valid JSON text, as Object does
// over members.
type Array struct {
	b []byte
	i int
}

// NewArray starts an iteration over arr, valid JSON text that begins with '['.
func NewArray(arr []byte) Array { return Array{b: arr, i: 1} }

// Next returns the next element as raw JSON text. ok is false after the last element.
func (a *Array) Next() (val []byte, ok bool) {
	i, more := nextStart(a.b, a.i, ']')
	if !more {
		a.i = i
		return nil, false
	}
	end := skipValue(a.b, i)
	a.i = end
	return a.b[i:end], true
}
