package admission

import (
	"encoding/json"
	"errors"
	"fmt"
)

// rawObject is the admitted object's JSON as it appears in the request
// body. It is a slice of that body, not a copy: the body outlives the
// decision. Unmarshal hands it the bytes of a value it has already
// validated (it checks the whole review before decoding any of it).
type rawObject []byte

func (o *rawObject) UnmarshalJSON(b []byte) error {
	*o = b
	return nil
}

// errNotObject: the request's object is not a JSON object.
var errNotObject = errors.New("the object is not a JSON object")

// decodeFields decodes the top-level fields of the JSON object raw for which
// keep answers true, as json.Unmarshal into map[string]any would, and skips
// the others without decoding them (metadata with its managed fields,
// status). Field names are compared exactly, after unescaping, as the API
// server and the container runtime read them (encoding/json's struct
// decoding would match "Spec" to spec). Of duplicate fields, the last one
// counts, as with json.Unmarshal. A JSON null, or no object at all, is a
// nil map.
func decodeFields(raw []byte, keep func(field string) bool) (map[string]any, error) {
	i := skipSpace(raw, 0)
	if i == len(raw) || hasLiteral(raw, i, "null") {
		return nil, nil
	}
	if i >= len(raw) || raw[i] != '{' {
		return nil, errNotObject
	}
	out := map[string]any{}
	i++
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) {
			return nil, errTruncated
		}
		switch raw[i] {
		case '}':
			return out, nil
		case ',':
			i = skipSpace(raw, i+1)
		}
		keyEnd, err := endOfString(raw, i)
		if err != nil {
			return nil, err
		}
		key, err := unquoteKey(raw[i:keyEnd])
		if err != nil {
			return nil, err
		}
		i = skipSpace(raw, keyEnd)
		if i >= len(raw) || raw[i] != ':' {
			return nil, fmt.Errorf("the object's field %q has no value", key)
		}
		start := skipSpace(raw, i+1)
		end, err := endOfValue(raw, start)
		if err != nil {
			return nil, err
		}
		if keep(key) {
			var v any
			if err := json.Unmarshal(raw[start:end], &v); err != nil {
				return nil, fmt.Errorf("the object's field %q: %w", key, err)
			}
			out[key] = v
		}
		i = end
	}
}

var errTruncated = errors.New("the object's JSON ends early")

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// unquoteKey returns the field name of a quoted JSON string. Names that
// are plain ASCII need no decoding; others (escapes, other UTF-8, invalid
// bytes) are decoded as encoding/json does.
func unquoteKey(q []byte) (string, error) {
	plain := true
	for _, c := range q[1 : len(q)-1] {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return string(q[1 : len(q)-1]), nil
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", fmt.Errorf("the object has a malformed field name: %w", err)
	}
	return s, nil
}

// endOfString returns the index just past the JSON string starting at i.
func endOfString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errors.New("the object's JSON has a field name that is not a string")
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++ // the escaped byte; \uXXXX's hex digits are plain bytes
		case '"':
			return i + 1, nil
		}
	}
	return 0, errTruncated
}

// endOfValue returns the index just past the JSON value starting at i.
func endOfValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errTruncated
	}
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, err := endOfString(b, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errTruncated
	}
	// A number, true, false or null: up to the next delimiter.
	start := i
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	if i == start {
		return 0, errors.New("the object's JSON has a field without a value")
	}
	return i, nil
}
