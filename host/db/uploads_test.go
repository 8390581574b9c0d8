package db_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pulpo/pulpo/host/db"
)

func TestPutChunk(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	u := must[db.Upload](t)(d.CreateUpload(ctx, 100))
	if u.Size != 100 || u.HashedBytes != 0 || u.HashState != nil {
		t.Fatalf("new upload %+v", u)
	}
	state := func(s string) []byte { return []byte("state:" + s) }
	type want struct {
		err      error
		replaced string // file of the replaced chunk
		hashed   int64
		state    []byte
	}
	steps := []struct {
		name         string
		off, size    int64
		hashedBefore int64
		hashState    []byte
		want         want
	}{
		{"first chunk continues the (empty) prefix", 0, 10, 0, state("0-10"), want{hashed: 10, state: state("0-10")}},
		{"gap: stored but not hashed", 20, 10, 10, state("bogus"), want{hashed: 10, state: state("0-10")}},
		{"overlaps the start of a chunk", 15, 10, 10, state("x"), want{err: db.ErrChunkOverlap, hashed: 10, state: state("0-10")}},
		{"overlaps the end of a chunk", 5, 10, 10, state("x"), want{err: db.ErrChunkOverlap, hashed: 10, state: state("0-10")}},
		{"inside a chunk", 22, 2, 10, state("x"), want{err: db.ErrChunkOverlap, hashed: 10, state: state("0-10")}},
		{"covers a chunk", 19, 20, 10, state("x"), want{err: db.ErrChunkOverlap, hashed: 10, state: state("0-10")}},
		{"contiguous but the caller's prefix is stale", 10, 10, 0, state("stale"), want{hashed: 10, state: state("0-10")}},
		{"same offset replaces; contiguous with a current prefix", 10, 10, 10, state("0-20"), want{replaced: "c10-10-6", hashed: 20, state: state("0-20")}},
		{"next contiguous chunk without a state", 30, 10, 20, nil, want{hashed: 20, state: state("0-20")}},
		{"replacing a larger chunk at the same offset can overlap the next", 20, 11, 20, state("x"), want{err: db.ErrChunkOverlap, hashed: 20, state: state("0-20")}},
		{"replacing a hashed chunk resets the state", 0, 10, 0, state("again"), want{replaced: "c0-10-0", hashed: 0}},
		{"adjacent chunks do not overlap", 40, 60, 0, nil, want{hashed: 0}},
	}
	files := map[int64]string{}
	for i, s := range steps {
		file := fmt.Sprintf("c%d-%d-%d", s.off, s.size, i)
		replaced, err := d.PutChunk(ctx, db.UploadChunk{UploadID: u.ID, Offset: s.off, Size: s.size, File: file, SHA256: fmt.Sprint(i)},
			s.hashedBefore, s.hashState)
		if !errors.Is(err, s.want.err) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.want.err)
		}
		if s.want.err != nil && !errors.Is(err, db.ErrConflict) {
			t.Fatalf("%s: %v is not a conflict", s.name, err)
		}
		switch {
		case s.want.replaced == "" && replaced != nil:
			t.Fatalf("%s: replaced %+v, want nothing", s.name, replaced)
		case s.want.replaced != "" && (replaced == nil || replaced.File != s.want.replaced || replaced.Offset != s.off):
			t.Fatalf("%s: replaced %+v, want file %s", s.name, replaced, s.want.replaced)
		}
		if err == nil {
			files[s.off] = file
		}
		got := must[db.Upload](t)(d.GetUpload(ctx, u.ID))
		if got.HashedBytes != s.want.hashed || !bytes.Equal(got.HashState, s.want.state) {
			t.Fatalf("%s: hashed %d state %q, want %d %q", s.name, got.HashedBytes, got.HashState, s.want.hashed, s.want.state)
		}
	}
	chunks := must[[]db.UploadChunk](t)(d.UploadChunks(ctx, u.ID))
	var offs []int64
	for _, c := range chunks {
		offs = append(offs, c.Offset)
		if files[c.Offset] != c.File {
			t.Errorf("chunk at %d is %s, want %s", c.Offset, c.File, files[c.Offset])
		}
	}
	if fmt.Sprint(offs) != "[0 10 20 30 40]" {
		t.Fatalf("chunks at %v", offs)
	}
	ok(t, d.SaveUploadHash(ctx, u.ID, state("all"), 100))
	if got := must[db.Upload](t)(d.GetUpload(ctx, u.ID)); got.HashedBytes != 100 || string(got.HashState) != "state:all" {
		t.Fatalf("after SaveUploadHash %+v", got)
	}
	deleted := must[[]db.UploadChunk](t)(d.DeleteUpload(ctx, u.ID))
	if len(deleted) != 5 {
		t.Fatalf("DeleteUpload returned %d chunks", len(deleted))
	}
	_, err := d.GetUpload(ctx, u.ID)
	wantErr(t, err, db.ErrNotFound)
	_, err = d.DeleteUpload(ctx, u.ID)
	wantErr(t, err, db.ErrNotFound)
	_, err = d.PutChunk(ctx, db.UploadChunk{UploadID: u.ID, Offset: 0, Size: 1, File: "x", SHA256: "x"}, 0, nil)
	wantErr(t, err, db.ErrNotFound)
}

// TestPutChunkOtherUpload: chunks of different uploads never overlap.
func TestPutChunkOtherUpload(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	a := must[db.Upload](t)(d.CreateUpload(ctx, 10))
	b := must[db.Upload](t)(d.CreateUpload(ctx, 10))
	must[*db.UploadChunk](t)(d.PutChunk(ctx, db.UploadChunk{UploadID: a.ID, Offset: 0, Size: 10, File: "a", SHA256: "a"}, 0, nil))
	must[*db.UploadChunk](t)(d.PutChunk(ctx, db.UploadChunk{UploadID: b.ID, Offset: 5, Size: 5, File: "b", SHA256: "b"}, 0, nil))
	if p := must[db.Page[db.Upload]](t)(d.ListUploads(ctx, db.ListParams{Limit: 10})); p.Count != 2 || p.Items[0].ID != b.ID {
		t.Fatalf("uploads list: count %d", p.Count)
	}
}
