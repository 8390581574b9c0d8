package db

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// NaturalKey is the stored identity of a unit: the hex sha256 of the JSON
// array of its natural-key field values, re-encoded canonically.
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
		if err := json.Unmarshal(raw, &vals[i]); err != nil {
			return "", fmt.Errorf("natural key field %q: %w", k, err)
		}
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
