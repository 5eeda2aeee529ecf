package verify

import "fmt"

// checkStatementSize refuses a statement beyond the limits of evaluation
// (MaxStatementBytes, MaxStatementDepth, MaxStatementItems) before it is
// decoded into values: it reads each byte at most once, allocates nothing
// and stops at the first limit exceeded. It does not validate the JSON;
// the decoder that follows does.
//
// A statement over a limit is a property of the evidence (whoever signed
// it made it that large), so the caller treats it as a failed statement,
// not as "could not decide".
func checkStatementSize(payload []byte) error {
	if len(payload) > MaxStatementBytes {
		return fmt.Errorf("statement is %d bytes, more than the limit of %d for evaluating conditions", len(payload), MaxStatementBytes)
	}
	return checkJSONShape(payload, MaxStatementDepth, MaxStatementItems)
}

// checkJSONShape refuses JSON that nests arrays and objects deeper than
// maxDepth or has more than maxItems array elements and object members
// (counted exactly for valid JSON).
func checkJSONShape(payload []byte, maxDepth, maxItems int) error {
	var (
		depth, items int
		inString     bool
		opened       bool // after '[' or '{': the next value is an item
	)
	for i := 0; i < len(payload); i++ {
		c := payload[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if opened {
			opened = false
			if c != ']' && c != '}' {
				items++
			}
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > maxDepth {
				return fmt.Errorf("statement nests arrays and objects deeper than the limit of %d for evaluating conditions", maxDepth)
			}
			opened = true
		case ']', '}':
			depth--
		case ',':
			items++
		}
		if items > maxItems {
			return fmt.Errorf("statement has more than %d array elements and object members, the limit for evaluating conditions", maxItems)
		}
	}
	return nil
}
