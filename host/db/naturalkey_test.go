package db_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/pulpo/pulpo/host/db"
)

func TestNaturalKey(t *testing.T) {
	key := func(fields string, keys ...string) string {
		t.Helper()
		k, err := db.NaturalKey([]byte(fields), keys)
		if err != nil {
			t.Fatalf("%s: %v", fields, err)
		}
		return k
	}
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	// The encoding stored keys already have: values in key order, compact.
	if got, want := key(`{"n": 42, "s": "x", "other": 1}`, "s", "n"), hash(`["x",42]`); got != want {
		t.Errorf("key %s, want the hash of [\"x\",42] %s", got, want)
	}
	if got, want := key(`{"f": 1.5, "o": {"b": 2, "a": [1, "z"]}}`, "f", "o"), hash(`[1.5,{"a":[1,"z"],"b":2}]`); got != want {
		t.Errorf("float and object key %s, want %s", got, want)
	}
	// Numbers are one key by value.
	for _, same := range [][2]string{{`{"n": 1}`, `{"n": 1.0}`}, {`{"n": 100}`, `{"n": 1e2}`}, {`{"n": 0.5}`, `{"n": 5e-1}`}} {
		if key(same[0], "n") != key(same[1], "n") {
			t.Errorf("%s and %s have different keys", same[0], same[1])
		}
	}
	// Integers beyond float64's 2^53 keep every digit, nested ones too.
	for _, differ := range [][2]string{
		{`{"n": 9007199254740993}`, `{"n": 9007199254740992}`},
		{`{"n": {"id": 123456789012345678901}}`, `{"n": {"id": 123456789012345678902}}`},
		{`{"n": [18446744073709551617]}`, `{"n": [18446744073709551616]}`},
	} {
		if key(differ[0], "n") == key(differ[1], "n") {
			t.Errorf("%s and %s share a key", differ[0], differ[1])
		}
	}
	for _, bad := range []string{`[]`, `{"m": 1}`, `{"n": }`} {
		if _, err := db.NaturalKey([]byte(bad), []string{"n"}); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
