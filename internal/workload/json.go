package workload

import (
	"encoding/json"
	"errors"
	"fmt"
)

// errNotObject: the request's object is not a JSON object.
var errNotObject = errors.New("the object is not a JSON object")

var errTruncated = errors.New("the object's JSON ends early")

// decodeObject decodes the JSON object raw as json.Unmarshal into
// map[string]any would, but only the part shape keeps: the fields that can
// hold images, with what leads to them. Everything else (metadata with its
// managed fields, status, environment, resources) is skipped unread. Field
// names are compared exactly, after unescaping, as the API server and the
// container runtime read them (encoding/json's struct decoding would match
// "Spec" to spec). Of duplicate fields, the last one counts, as with
// json.Unmarshal. A JSON null, or no object at all, is a nil map.
//
// raw must be valid JSON (the review it came in was checked as a whole);
// on anything else decodeObject returns an error or a partial result, and
// never panics.
func decodeObject(raw []byte, shape *Shape) (map[string]any, error) {
	i := skipSpace(raw, 0)
	if i == len(raw) || hasLiteral(raw, i, "null") {
		return nil, nil
	}
	if raw[i] != '{' || shape == nil || shape.Fields == nil {
		return nil, errNotObject
	}
	m, _, err := decodeMembers(raw, i, shape.Fields)
	return m, err
}

// decodeValue decodes the value at raw[i:] pruned to shape, and returns the
// index just past it.
func decodeValue(raw []byte, i int, shape *Shape) (any, int, error) {
	if i >= len(raw) {
		return nil, 0, errTruncated
	}
	switch {
	case shape != nil && shape.Fields != nil && raw[i] == '{':
		return decodeMembers(raw, i, shape.Fields)
	case shape != nil && shape.Elem != nil && raw[i] == '[':
		return decodeElems(raw, i, shape.Elem)
	}
	// The whole value.
	end, err := endOfValue(raw, i)
	if err != nil {
		return nil, 0, err
	}
	if s, ok := plainString(raw[i:end]); ok {
		return s, end, nil
	}
	var v any
	if err := json.Unmarshal(raw[i:end], &v); err != nil {
		return nil, 0, fmt.Errorf("the object's JSON: %w", err)
	}
	return v, end, nil
}

// decodeMembers decodes the object at raw[i:], keeping the fields named in
// fields.
func decodeMembers(raw []byte, i int, fields map[string]*Shape) (map[string]any, int, error) {
	out := map[string]any{}
	i++ // {
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) {
			return nil, 0, errTruncated
		}
		switch raw[i] {
		case '}':
			return out, i + 1, nil
		case ',':
			i = skipSpace(raw, i+1)
		}
		keyEnd, err := endOfString(raw, i)
		if err != nil {
			return nil, 0, err
		}
		key, err := unquoteKey(raw[i:keyEnd])
		if err != nil {
			return nil, 0, err
		}
		i = skipSpace(raw, keyEnd)
		if i >= len(raw) || raw[i] != ':' {
			return nil, 0, fmt.Errorf("the object's field %q has no value", key)
		}
		i = skipSpace(raw, i+1)
		shape, keep := fields[key]
		if !keep {
			if i, err = endOfValue(raw, i); err != nil {
				return nil, 0, err
			}
			continue
		}
		var v any
		if v, i, err = decodeValue(raw, i, shape); err != nil {
			return nil, 0, err
		}
		out[key] = v
	}
}

// decodeElems decodes the array at raw[i:], each element pruned to elem.
func decodeElems(raw []byte, i int, elem *Shape) ([]any, int, error) {
	out := []any{}
	i++ // [
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) {
			return nil, 0, errTruncated
		}
		switch raw[i] {
		case ']':
			return out, i + 1, nil
		case ',':
			i = skipSpace(raw, i+1)
		}
		v, end, err := decodeValue(raw, i, elem)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, v)
		i = end
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// plainString returns the content of a quoted JSON string that needs no
// decoding: printable ASCII without escapes.
func plainString(q []byte) (string, bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", false
	}
	for _, c := range q[1 : len(q)-1] {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	return string(q[1 : len(q)-1]), true
}

// unquoteKey returns the field name of a quoted JSON string, decoded as
// encoding/json decodes it.
func unquoteKey(q []byte) (string, error) {
	if s, ok := plainString(q); ok {
		return s, nil
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
