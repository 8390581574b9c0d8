package storage

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is the longest key, in bytes, that drivers accept (S3's limit).
const MaxKeyLen = 1024

// ArtifactKey returns the key of the artifact whose sha256 is sha256hex, which must be 64
// lowercase hex digits. The first two digits name a directory, so no directory holds more
// than 1/256 of all artifacts:
//
//	<store>/
//	├── artifact/
//	│   ├── 00/
//	│   ├── …
//	│   └── ab/
//	│       └── cdef0123…   the remaining 62 hex digits of the sha256
//	└── .tmp/               reserved for driver bookkeeping (fs: in-flight writes)
//
// For example, the artifact with sha256 "abcdef0123…" has key "artifact/ab/cdef0123…".
func ArtifactKey(sha256hex string) (string, error) {
	if len(sha256hex) != 64 || strings.Trim(sha256hex, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w: artifact digest %q is not 64 lowercase hex digits", ErrInvalidKey, sha256hex)
	}
	return "artifact/" + sha256hex[:2] + "/" + sha256hex[2:], nil
}

// ValidKey reports whether key may name an object; the error wraps [ErrInvalidKey]. A key
// is valid UTF-8 of at most [MaxKeyLen] bytes, made of non-empty segments separated by
// single slashes, with no leading or trailing slash. It contains no backslash or NUL, no
// segment is "." or "..", and the first segment does not start with "." (drivers keep
// their own files there). Every driver checks every key with it, so a key never escapes
// the driver's namespace.
func ValidKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why) }
	switch {
	case key == "":
		return bad("empty")
	case len(key) > MaxKeyLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyLen))
	case !utf8.ValidString(key):
		return bad("not UTF-8")
	case strings.ContainsAny(key, "\\\x00"):
		return bad("contains a backslash or NUL")
	case key[0] == '/':
		return bad("absolute")
	case key[0] == '.':
		return bad("first segment starts with a dot (reserved)")
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return bad("empty segment")
		case ".", "..":
			return bad("dot segment")
		}
	}
	return nil
}

// ValidPrefix reports whether prefix may be passed to Driver.List; the error wraps
// [ErrInvalidKey]. A prefix is valid when it is empty or some valid key starts with it
// ("a/", "a/b" and "artifact/ab/cd" are; "/a", "a//" and "../" are not).
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := ValidKey(prefix + "x"); err != nil {
		return fmt.Errorf("%w: prefix %q", ErrInvalidKey, prefix)
	}
	return nil
}
