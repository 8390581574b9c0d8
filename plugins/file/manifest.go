package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pulpo/pulpo/abi"
)

// A PULP_MANIFEST lists one file per line as "relative_path,sha256,size". There is no
// header; blank lines and lines starting with "#" are skipped; each line and each field is
// stripped of surrounding white space (so a trailing "\r" does no harm). The line is split
// at its last two commas, so a relative path may contain commas (pulp_file's manifest.py).

// maxLineBytes bounds one manifest line; a longer line is an error naming it.
const maxLineBytes = 1 << 20

// Entry is one file of a manifest.
type Entry struct {
	RelativePath string
	SHA256       string
	Size         int64
}

// String returns the entry as a manifest line, without the newline.
func (e Entry) String() string {
	return e.RelativePath + "," + e.SHA256 + "," + strconv.FormatInt(e.Size, 10)
}

// ManifestError is a manifest line that cannot be used.
type ManifestError struct {
	// Line is the 1-based line number.
	Line int
	// Text is the line as read (shortened when long).
	Text string
	// Reason says what is wrong with it.
	Reason string
}

func (e *ManifestError) Error() string {
	return fmt.Sprintf("manifest line %d %q: %s", e.Line, e.Text, e.Reason)
}

// ParseLine parses one manifest line, with or without its line ending. It returns ok false
// (and no error) for blank and comment lines; a non-nil error says why the line is invalid.
func ParseLine(line string) (e Entry, ok bool, err error) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return Entry{}, false, nil
	}
	last := strings.LastIndexByte(line, ',')
	if last < 0 {
		return Entry{}, false, errors.New("want 3 comma-separated fields relative_path,sha256,size, got 1")
	}
	mid := strings.LastIndexByte(line[:last], ',')
	if mid < 0 {
		return Entry{}, false, errors.New("want 3 comma-separated fields relative_path,sha256,size, got 2")
	}
	e.RelativePath = strings.TrimSpace(line[:mid])
	e.SHA256 = strings.TrimSpace(line[mid+1 : last])
	size := strings.TrimSpace(line[last+1:])
	if err := checkPath(e.RelativePath); err != nil {
		return Entry{}, false, err
	}
	if !isSHA256(e.SHA256) {
		return Entry{}, false, fmt.Errorf("sha256 %q is not 64 lowercase hex digits", shorten(e.SHA256))
	}
	if e.Size, err = parseSize(size); err != nil {
		return Entry{}, false, err
	}
	return e, true, nil
}

// checkPath accepts clean relative paths (abi spec 9.3) in UTF-8 and says what is wrong
// with anything else.
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("relative path is empty")
	case p[0] == '/':
		return fmt.Errorf("relative path %q is absolute", shorten(p))
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("relative path %q contains a NUL byte", shorten(p))
	case strings.IndexByte(p, '\n') >= 0:
		return fmt.Errorf("relative path %q contains a line break", shorten(p))
	case strings.IndexByte(p, '\\') >= 0:
		return fmt.Errorf("relative path %q contains a backslash", shorten(p))
	case !utf8.ValidString(p):
		return fmt.Errorf("relative path %q is not valid UTF-8", shorten(p))
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("relative path %q has an empty segment", shorten(p))
		case ".", "..":
			return fmt.Errorf("relative path %q has a %q segment", shorten(p), seg)
		}
	}
	if !abi.CleanRelativePath(p) { // the host's own rule, should the two ever drift apart
		return fmt.Errorf("relative path %q is not a clean relative path", shorten(p))
	}
	return nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("size is empty")
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("size %q is not a non-negative integer", shorten(s))
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q is too large", shorten(s))
	}
	return n, nil
}

// shorten keeps error messages readable when a line is huge.
func shorten(s string) string {
	// A text line is quoted whole up to 200 bytes; a binary one (not a manifest
	// at all) only enough to recognise, as %q makes each byte four characters.
	max := 200
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		max = 32
	}
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// ManifestReader reads a manifest entry by entry. Besides each line's own validity it
// checks the manifest as a whole, as a repository version will be checked: a relative path
// listed twice must have the same digest and size (the repeat is skipped), and no path may
// be both a file and a directory of another file ("a/b" next to "a/b/c").
type ManifestReader struct {
	sc   *bufio.Scanner
	line int
	// files maps each relative path to what its first line said; dirs maps each
	// directory implied by a path to the first line implying it. Paths are keyed by a
	// 128-bit hash, so memory stays small and flat for manifests of millions of lines
	// (a Go guest has 256 MiB by default); a false match is as likely as a sha256 one.
	files map[pathKey]seen
	dirs  map[pathKey]int32
	seeds [2]maphash.Seed
	dups  int
	// lastDir is the directory of the previous entry: its ancestors were checked then, so
	// an entry in the same directory (the usual case) skips the walk up.
	lastDir string
}

type pathKey [2]uint64

// seen is what a manifest line said about a path: the first 8 bytes of its digest (a
// different digest that shares them slips through to the host, which keeps one unit per
// relative path anyway), its size and its line.
type seen struct {
	sum  uint64
	size int64
	line int32
}

// NewManifestReader returns a reader of the manifest r.
func NewManifestReader(r io.Reader) *ManifestReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	return &ManifestReader{
		sc: sc, files: map[pathKey]seen{}, dirs: map[pathKey]int32{},
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
	}
}

func (m *ManifestReader) key(p string) pathKey {
	return pathKey{maphash.String(m.seeds[0], p), maphash.String(m.seeds[1], p)}
}

// Next returns the next entry, io.EOF after the last one, or a *ManifestError for the
// first invalid line (a read error is returned as it is).
func (m *ManifestReader) Next() (Entry, error) {
	for m.sc.Scan() {
		m.line++
		text := m.sc.Text()
		e, ok, err := ParseLine(text)
		if err != nil {
			return Entry{}, m.fail(text, err.Error())
		}
		if !ok {
			continue
		}
		var prefix [8]byte
		_, _ = hex.Decode(prefix[:], []byte(e.SHA256[:16])) // checked by ParseLine
		s := seen{sum: binary.BigEndian.Uint64(prefix[:]), size: e.Size, line: int32(min(m.line, math.MaxInt32))}
		k := m.key(e.RelativePath)
		if prev, dup := m.files[k]; dup {
			if prev.sum != s.sum {
				return Entry{}, m.fail(text, fmt.Sprintf("relative path %q is listed on line %d with a different sha256", shorten(e.RelativePath), prev.line))
			}
			if prev.size != s.size {
				return Entry{}, m.fail(text, fmt.Sprintf("relative path %q is listed on line %d with a different size", shorten(e.RelativePath), prev.line))
			}
			m.dups++
			continue
		}
		if l, ok := m.dirs[k]; ok {
			return Entry{}, m.fail(text, fmt.Sprintf("relative path %q is a directory of the file on line %d", shorten(e.RelativePath), l))
		}
		if dir := parentDir(e.RelativePath); dir != m.lastDir {
			for i := range len(dir) + 1 {
				if i < len(dir) && dir[i] != '/' {
					continue
				}
				d := dir[:i]
				dk := m.key(d)
				if f, ok := m.files[dk]; ok {
					return Entry{}, m.fail(text, fmt.Sprintf("directory %q of relative path %q is the file on line %d", shorten(d), shorten(e.RelativePath), f.line))
				}
				if _, ok := m.dirs[dk]; !ok {
					m.dirs[dk] = s.line
				}
			}
			m.lastDir = dir
		}
		m.files[k] = s
		return e, nil
	}
	if err := m.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Entry{}, &ManifestError{Line: m.line + 1, Text: shorten(string(m.sc.Bytes())), Reason: fmt.Sprintf("line is longer than %d bytes", maxLineBytes)}
		}
		return Entry{}, fmt.Errorf("read manifest after line %d: %w", m.line, err)
	}
	return Entry{}, io.EOF
}

// parentDir returns the directory part of a relative path, "" for a top-level file.
func parentDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func (m *ManifestReader) fail(text, reason string) error {
	return &ManifestError{Line: m.line, Text: shorten(strings.TrimRight(text, "\r")), Reason: reason}
}

// Line returns the number of lines read so far.
func (m *ManifestReader) Line() int { return m.line }

// Duplicates returns how many repeated lines (same path, digest and size) were skipped.
func (m *ManifestReader) Duplicates() int { return m.dups }

// WriteManifest writes entries as a manifest, one line each.
func WriteManifest(w io.Writer, entries []Entry) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	for _, e := range entries {
		bw.WriteString(e.RelativePath)
		bw.WriteByte(',')
		bw.WriteString(e.SHA256)
		bw.WriteByte(',')
		bw.WriteString(strconv.FormatInt(e.Size, 10))
		if err := bw.WriteByte('\n'); err != nil {
			return err
		}
	}
	return bw.Flush()
}
