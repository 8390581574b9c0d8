package storage_test

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/host/storage"
)

func TestArtifactKey(t *testing.T) {
	t.Parallel()
	const sum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		in, want string
	}{
		{in: sum, want: "artifact/e3/b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{in: strings.ToUpper(sum)},
		{in: sum[:63]},
		{in: sum + "0"},
		{in: sum[:63] + "g"},
		{in: ""},
		{in: "../" + sum[3:]},
	}
	for _, tt := range tests {
		got, err := storage.ArtifactKey(tt.in)
		if tt.want == "" {
			if !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("ArtifactKey(%q) = %q, %v; want ErrInvalidKey", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ArtifactKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if err := storage.ValidKey(got); err != nil {
			t.Errorf("ValidKey(ArtifactKey(%q)): %v", tt.in, err)
		}
	}
}

func TestValidKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"a/b/c.txt", true},
		{"a/.hidden", true},
		{"a/..b", true},
		{"a/b..", true},
		{"é/ü", true},
		{strings.Repeat("a", storage.MaxKeyLen), true},
		{"", false},
		{strings.Repeat("a", storage.MaxKeyLen+1), false},
		{"/abs", false},
		{"a/", false},
		{"a//b", false},
		{"a/./b", false},
		{"a/../b", false},
		{"..", false},
		{"../x", false},
		{".", false},
		{"./a", false},
		{".tmp/x", false},
		{`a\b`, false},
		{"a\x00b", false},
		{"a\xffb", false},
	}
	for _, tt := range tests {
		err := storage.ValidKey(tt.key)
		if tt.ok && err != nil {
			t.Errorf("ValidKey(%q) = %v, want nil", tt.key, err)
		}
		if !tt.ok && !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, want ErrInvalidKey", tt.key, err)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"a", true},
		{"a/", true},
		{"artifact/ab/cd", true},
		{"/", false},
		{"/a", false},
		{"a//", false},
		{"../", false},
		{"a/../", false},
		{".tmp/", false},
		{`a\`, false},
	}
	for _, tt := range tests {
		err := storage.ValidPrefix(tt.prefix)
		if tt.ok && err != nil {
			t.Errorf("ValidPrefix(%q) = %v, want nil", tt.prefix, err)
		}
		if !tt.ok && !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("ValidPrefix(%q) = %v, want ErrInvalidKey", tt.prefix, err)
		}
	}
}

// FuzzValidKey checks that every accepted key stays inside the store when joined to a root.
func FuzzValidKey(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/./b", "a//b", "/abs", `a\b`, "a/..", ".tmp/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if storage.ValidKey(key) != nil {
			return
		}
		if p := path.Join("/root", key); p != "/root/"+key {
			t.Fatalf("ValidKey accepted %q, which joins to %q", key, p)
		}
		if strings.HasPrefix(key, ".") || strings.ContainsAny(key, "\\\x00") {
			t.Fatalf("ValidKey accepted %q", key)
		}
	})
}
