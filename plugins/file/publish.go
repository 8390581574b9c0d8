package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk"
)

// emptySHA256 is the digest of zero bytes: the one file whose size 0 is certain.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// publish lays out a publication like pulp_file's: every file at its relative path
// (pass-through) and, unless the publication's manifest field is null or empty, a manifest
// listing them sorted by relative path.
func publish(_ context.Context, p *sdk.Publish) error {
	manifest, err := publicationManifest(p.Publication.Fields)
	if err != nil {
		return err
	}
	p.PassThrough()

	var files fileList
	unknownSize := 0
	for c, err := range p.Content() {
		if err != nil {
			return err
		}
		if c.Type != fileType {
			continue
		}
		path, sum, size, known, err := entryOf(c)
		if err != nil {
			return err
		}
		if !known {
			unknownSize++
		}
		files.add(path, sum, size)
	}
	if manifest == "" {
		p.Log.Debug("published without a manifest", "files", files.n)
		return nil
	}
	order := files.sorted()
	dir := []byte(manifest + "/")
	for _, i := range order {
		path := files.path(i)
		if string(path) == manifest || bytes.HasPrefix(path, dir) || strings.HasPrefix(manifest, string(path)+"/") {
			return sdk.Errorf(abi.CodeInvalidInput, "manifest %q collides with file %q of the repository version", manifest, path)
		}
	}
	if unknownSize > 0 {
		p.Log.Warn("the host gave no size for some files; the manifest lists them with size 0",
			"files", unknownSize, "manifest", manifest)
	}

	w, err := p.Create(manifest)
	if err != nil {
		return err
	}
	if err := files.write(w, order); err != nil {
		w.Close()
		return fmt.Errorf("write %s: %w", manifest, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", manifest, err)
	}
	p.Log.Debug("published", "files", files.n, "manifest", manifest)
	return nil
}

// fileList holds the files of a publication, to be sorted. A version may hold millions of
// files and a Go guest has 256 MiB by default, so it stays compact and free of pointers:
// paths are packed into 1 MiB chunks and records into fixed-size blocks, so growing copies
// little and the garbage collector has nothing to scan.
type fileList struct {
	paths  [][]byte
	blocks [][]fileRecord
	n      int
}

type fileRecord struct {
	chunk, off, plen uint32 // the path: paths[chunk][off:off+plen]
	size             int64
	sum              [32]byte
}

const (
	pathChunkBytes = 1 << 20
	recordBlockLen = 1 << 14
)

func (l *fileList) add(path string, sum [32]byte, size int64) {
	last := len(l.paths) - 1
	if last < 0 || len(l.paths[last])+len(path) > cap(l.paths[last]) {
		l.paths = append(l.paths, make([]byte, 0, max(pathChunkBytes, len(path))))
		last++
	}
	off := len(l.paths[last])
	l.paths[last] = append(l.paths[last], path...)
	if l.n%recordBlockLen == 0 {
		l.blocks = append(l.blocks, make([]fileRecord, 0, recordBlockLen))
	}
	b := &l.blocks[len(l.blocks)-1]
	*b = append(*b, fileRecord{chunk: uint32(last), off: uint32(off), plen: uint32(len(path)), size: size, sum: sum})
	l.n++
}

func (l *fileList) record(i uint32) *fileRecord {
	return &l.blocks[i/recordBlockLen][i%recordBlockLen]
}

func (l *fileList) path(i uint32) []byte {
	r := l.record(i)
	return l.paths[r.chunk][r.off : r.off+r.plen]
}

// sorted returns the indexes of the files in the order of their paths (bytewise).
func (l *fileList) sorted() []uint32 {
	order := make([]uint32, l.n)
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return bytes.Compare(l.path(a), l.path(b)) })
	return order
}

// write writes the files in the given order as manifest lines, like WriteManifest.
func (l *fileList) write(w io.Writer, order []uint32) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	line := make([]byte, 0, 256)
	for _, i := range order {
		r := l.record(i)
		line = append(line[:0], l.path(i)...)
		line = append(line, ',')
		line = hex.AppendEncode(line, r.sum[:])
		line = append(line, ',')
		line = strconv.AppendInt(line, r.size, 10)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// publicationManifest returns the manifest file name a publication asks for: the default
// when the field is absent, "" (no manifest) when it is null or empty.
func publicationManifest(fields json.RawMessage) (string, error) {
	var f map[string]json.RawMessage
	if len(fields) > 0 {
		if err := json.Unmarshal(fields, &f); err != nil {
			return "", sdk.Errorf(abi.CodeInvalidInput, "publication fields: %v", err)
		}
	}
	raw, ok := f["manifest"]
	if !ok {
		return defaultManifest, nil
	}
	var name *string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", sdk.Errorf(abi.CodeInvalidInput, "publication field manifest: want a string or null: %v", err)
	}
	if name == nil || *name == "" {
		return "", nil
	}
	if !abi.CleanRelativePath(*name) || strings.ContainsAny(*name, "\n") {
		return "", sdk.Errorf(abi.CodeInvalidInput, "publication field manifest %q is not a clean relative path", *name)
	}
	return *name, nil
}

// entryOf reads a stored file.file unit. The size comes from its artifact (for on_demand
// content the host reports the size the remote promised); known is false when the host
// gave none for a non-empty file.
func entryOf(c abi.Content) (path string, sum [32]byte, size int64, known bool, err error) {
	var f File
	if err := json.Unmarshal(c.Fields, &f); err != nil {
		return "", sum, 0, false, sdk.Errorf(abi.CodeInvalidInput, "%s unit %s: %v", fileType, c.Fields, err)
	}
	if err := checkPath(f.RelativePath); err != nil {
		return "", sum, 0, false, sdk.Errorf(abi.CodeInvalidInput, "%s unit: %v", fileType, err)
	}
	if !isSHA256(f.SHA256) {
		return "", sum, 0, false, sdk.Errorf(abi.CodeInvalidInput, "%s unit %q: sha256 %q is not 64 lowercase hex digits", fileType, f.RelativePath, f.SHA256)
	}
	_, _ = hex.Decode(sum[:], []byte(f.SHA256)) // checked above
	for _, a := range c.Artifacts {
		if a.RelativePath == f.RelativePath || len(c.Artifacts) == 1 {
			size = a.Size
			break
		}
	}
	return f.RelativePath, sum, size, size > 0 || f.SHA256 == emptySHA256, nil
}
