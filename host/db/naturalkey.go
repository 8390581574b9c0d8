package db

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// NaturalKey is the stored identity of a unit: the hex sha256 of the JSON
// array of its natural-key field values, re-encoded canonically: object keys
// sorted, no spaces, and numbers by value (1.0 and 1 are one key). Integers
// keep every digit; through a float64 two integers above 2^53 could share a
// key. Every other number is encoded as its float64, as keys always were.
func NaturalKey(fields json.RawMessage, keys []string) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(fields, &m); err != nil {
		return "", fmt.Errorf("fields are not a JSON object: %w", err)
	}
	vals := make([]any, len(keys))
	for i, k := range keys {
		raw, ok := m[k]
		if !ok {
			return "", fmt.Errorf("natural key field %q is missing", k)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&vals[i]); err != nil {
			return "", fmt.Errorf("natural key field %q: %w", k, err)
		}
		vals[i] = canonical(vals[i])
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// canonical replaces the numbers in v (decoded with UseNumber) by their
// canonical form.
func canonical(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if !strings.ContainsAny(s, ".eE") {
			if n, ok := new(big.Int).SetString(s, 10); ok && !(n.Sign() == 0 && strings.HasPrefix(s, "-")) {
				return json.Number(n.String())
			}
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x
	case []any:
		for i := range x {
			x[i] = canonical(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = canonical(x[k])
		}
	}
	return v
}
