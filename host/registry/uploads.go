package registry

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/directio"
)

// Blob uploads stream through the host into a file under UploadDir with sha256 computed
// as the bytes arrive. A session's received size and running hash state live in
// Postgres, its bytes in the shared upload directory, so any serve process can continue
// it. A request holds the file's lock (flock) while it appends; bytes beyond the recorded
// size (an aborted PATCH) are cut off before anything else is written.

// uploadHeaders sets the headers every session response carries.
func (h *Handler) uploadHeaders(w http.ResponseWriter, name string, id uuid.UUID, size int64) {
	hdr := w.Header()
	hdr.Set("Location", h.prefix+name+"/blobs/uploads/"+id.String())
	hdr.Set("Docker-Upload-UUID", id.String())
	hdr.Set("Range", fmt.Sprintf("0-%d", max(size-1, 0)))
	hdr.Set("Content-Length", "0")
}

// startUpload answers POST /v2/<name>/blobs/uploads/: a cross-repository mount
// (?mount=&from=), a monolithic upload (?digest=), or a new session.
func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	q := r.URL.Query()
	if mount, from := q.Get("mount"), q.Get("from"); mount != "" && from != "" {
		done, err := h.mount(w, r, rt.name, mount, from)
		if done || err != nil {
			return err
		}
	}
	if digest := q.Get("digest"); digest != "" {
		return h.monolithic(w, r, rt.name, digest)
	}
	if _, err := h.pushable(r, rt.name); err != nil {
		return err
	}
	state, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	u, err := h.d.DB.CreateRegistryUpload(r.Context(), rt.name, state)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(h.uploadPath(u.ID), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		_ = h.d.DB.DeleteRegistryUpload(context.WithoutCancel(r.Context()), u.ID)
		return fmt.Errorf("upload file: %w", err)
	}
	f.Close()
	h.uploadHeaders(w, rt.name, u.ID, 0)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// pushable checks a push to name is allowed without creating anything: the repository
// appears when the first blob or manifest is complete.
func (h *Handler) pushable(r *http.Request, name string) (bool, error) {
	_, err := h.pushRepo(r, name, ActionPush, false)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == codeNameUnknown {
		return false, nil
	}
	return err == nil, err
}

// mount adds a blob of repository from to name, if from holds it; done is false when it
// does not, and the caller opens a session instead, as the spec asks.
func (h *Handler) mount(w http.ResponseWriter, r *http.Request, name, digest, from string) (bool, error) {
	if checkDigest(digest) != nil || checkName(from) != nil {
		return false, nil
	}
	_, fs, err := h.resolve(r, from, ActionPull)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == codeNameUnknown {
		return false, nil
	}
	if errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrDenied) {
		return false, nil // no pull on from: an ordinary upload, as the spec asks
	}
	if err != nil {
		return false, err
	}
	ctx := r.Context()
	key, err := h.digestKey(h.roles.BlobType, digest)
	if err != nil {
		return false, err
	}
	u, err := h.d.DB.RegistryUnitByKey(ctx, fs, h.roles.BlobType, key)
	if errors.Is(err, db.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	repo, err := h.pushRepo(r, name, ActionPush, true)
	if err != nil {
		return false, err
	}
	if err := h.d.DB.AddPending(ctx, repo, []uuid.UUID{u.ContentID}); err != nil {
		return false, err
	}
	h.blobCreated(w, name, digest)
	return true, nil
}

func (h *Handler) blobCreated(w http.ResponseWriter, name, digest string) {
	hdr := w.Header()
	hdr.Set("Location", h.prefix+name+"/blobs/"+digest)
	hdr.Set("Docker-Content-Digest", digest)
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// monolithic takes a whole blob in the POST body.
func (h *Handler) monolithic(w http.ResponseWriter, r *http.Request, name, digest string) error {
	if e := checkDigest(digest); e != nil {
		return e
	}
	if _, err := h.pushable(r, name); err != nil {
		return err
	}
	f, err := os.CreateTemp(h.d.UploadDir, "monolithic-*")
	if err != nil {
		return fmt.Errorf("upload file: %w", err)
	}
	path := f.Name()
	defer os.Remove(path) // gone after a commit already
	hs := sha256.New()
	n, err := h.copyBody(f, 0, hs, r.Body, -1)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return h.commitBlob(w, r, name, digest, path, n, hs)
}

// copyBody appends body (exactly want bytes when want >= 0) to f at off and to hs. A body that
// breaks off is BLOB_UPLOAD_INVALID.
func (h *Handler) copyBody(f *os.File, off int64, hs hash.Hash, body io.Reader, want int64) (int64, error) {
	src := body
	if want >= 0 {
		src = io.LimitReader(body, want)
	}
	rd := &readErr{r: src}
	n, err := directio.Append(f, off, rd, hs, h.d.Artifacts.WriteDirect())
	if rd.err != nil {
		return n, errorf(http.StatusBadRequest, codeBlobUploadInvalid, "reading the upload failed: "+rd.err.Error(), nil)
	}
	if err != nil {
		return n, fmt.Errorf("write upload: %w", err)
	}
	if want >= 0 && n != want {
		return n, errorf(http.StatusBadRequest, codeBlobUploadInvalid, fmt.Sprintf("body has %d bytes, Content-Range says %d", n, want), nil)
	}
	return n, nil
}

// readErr remembers its reader's failure, telling a client's broken body from
// a failed write.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// commitBlob checks the file's digest and makes it the blob digest of name; a mismatch
// keeps nothing.
func (h *Handler) commitBlob(w http.ResponseWriter, r *http.Request, name, digest, path string, size int64, hs hash.Hash) error {
	sha := hex.EncodeToString(hs.Sum(nil))
	alg, want, _ := strings.Cut(digest, ":")
	got := sha
	if alg == "sha512" {
		var err error
		if got, err = fileSHA512(path); err != nil {
			return err
		}
	}
	if got != want {
		return errorf(http.StatusBadRequest, codeDigestInvalid, "the uploaded content's digest is "+alg+":"+got,
			map[string]string{"digest": digest})
	}
	ctx := r.Context()
	repo, err := h.pushRepo(r, name, ActionPush, true)
	if err != nil {
		return err
	}
	art, _, err := h.d.Artifacts.Commit(ctx, artifact.FromFile(path, size, map[string]string{"sha256": sha}), false)
	if err != nil {
		return fmt.Errorf("store blob %s: %w", digest, err)
	}
	if err := h.addBlob(ctx, repo, digest, art.ID); err != nil {
		return fmt.Errorf("blob %s: %w", digest, err)
	}
	h.blobCreated(w, name, digest)
	return nil
}

func fileSHA512(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	hs := sha512.New()
	if _, err := io.Copy(hs, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(hs.Sum(nil)), nil
}

// session is a locked upload session: its file, open and flock'ed, cut to the recorded
// size, and its hash restored. close releases it.
type session struct {
	db.RegistryUpload
	f  *os.File
	hs hash.Hash
}

func (s *session) close() { s.f.Close() } // releases the flock

var errNoSession = errorf(http.StatusNotFound, codeBlobUploadUnknown, "blob upload unknown to registry", nil)

func (h *Handler) openSession(ctx context.Context, rt route) (*session, error) {
	id, err := uuid.Parse(rt.ref)
	if err != nil {
		return nil, errNoSession
	}
	f, err := os.OpenFile(h.uploadPath(id), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock upload %s: %w", id, err)
	}
	s := &session{f: f}
	if s.RegistryUpload, err = h.d.DB.GetRegistryUpload(ctx, id); err != nil || s.Name != rt.name {
		f.Close()
		if err == nil || errors.Is(err, db.ErrNotFound) {
			return nil, errNoSession
		}
		return nil, err
	}
	// A file shorter than the recorded size lost bytes in a crash (the kernel's, or
	// the power's): truncating would pad it with zeros that the recorded hash state
	// never saw, and a blob with the right digest but the wrong bytes would follow.
	// The session is over; the client starts again.
	if fi, err := f.Stat(); err != nil || fi.Size() < s.Size {
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", id, err)
		}
		h.log.WarnContext(ctx, "upload lost bytes in a crash; ending it", "upload", id, "recorded", s.Size, "file", fi.Size())
		h.endSession(ctx, id)
		return nil, errNoSession
	}
	if err := f.Truncate(s.Size); err != nil {
		f.Close()
		return nil, fmt.Errorf("upload %s: %w", id, err)
	}
	if _, err := f.Seek(s.Size, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	s.hs = sha256.New()
	if err := s.hs.(encoding.BinaryUnmarshaler).UnmarshalBinary(s.HashState); err != nil {
		f.Close()
		return nil, fmt.Errorf("upload %s hash state: %w", id, err)
	}
	return s, nil
}

// contentRange parses a chunk's Content-Range, "<start>-<end>" (optionally "bytes "
// prefixed, with "/<total>"); ok is false without one.
var contentRangeRE = regexp.MustCompile(`^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$`)

func contentRange(r *http.Request) (start, end int64, ok bool, err error) {
	v := strings.TrimSpace(r.Header.Get("Content-Range"))
	if v == "" {
		return 0, 0, false, nil
	}
	m := contentRangeRE.FindStringSubmatch(v)
	if m == nil {
		return 0, 0, false, errorf(http.StatusBadRequest, codeBlobUploadInvalid, "malformed Content-Range", map[string]string{"content_range": v})
	}
	start, _ = strconv.ParseInt(m[1], 10, 64)
	end, _ = strconv.ParseInt(m[2], 10, 64)
	if end < start {
		return 0, 0, false, errorf(http.StatusBadRequest, codeBlobUploadInvalid, "Content-Range ends before it starts", map[string]string{"content_range": v})
	}
	return start, end, true, nil
}

// appendChunk adds the request body to the session: a chunk must start where the session
// ends (else 416 with the session's Range), and a body that breaks off leaves the session
// as it was.
func (h *Handler) appendChunk(w http.ResponseWriter, r *http.Request, s *session) error {
	start, end, ranged, err := contentRange(r)
	if err != nil {
		return err
	}
	want := int64(-1)
	if ranged {
		if start != s.Size {
			h.uploadHeaders(w, s.Name, s.ID, s.Size)
			return errorf(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid,
				fmt.Sprintf("chunk starts at %d, the upload has %d bytes", start, s.Size), nil)
		}
		want = end - start + 1
		if r.ContentLength >= 0 && r.ContentLength != want {
			return errorf(http.StatusBadRequest, codeBlobUploadInvalid,
				fmt.Sprintf("Content-Length %d does not match Content-Range %d-%d", r.ContentLength, start, end), nil)
		}
	}
	n, err := h.copyBody(s.f, s.Size, s.hs, r.Body, want)
	if err != nil {
		_ = s.f.Truncate(s.Size)
		return err
	}
	if n == 0 {
		return nil
	}
	state, err := s.hs.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	if err := h.d.DB.AdvanceRegistryUpload(r.Context(), s.ID, s.Size, s.Size+n, state); err != nil {
		_ = s.f.Truncate(s.Size)
		if errors.Is(err, db.ErrConflict) {
			h.uploadHeaders(w, s.Name, s.ID, s.Size)
			return errorf(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "the upload moved meanwhile", nil)
		}
		return err
	}
	s.Size += n
	return nil
}

// patchUpload answers PATCH: a chunk (Content-Range) or a streamed body appended.
func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	s, err := h.openSession(r.Context(), rt)
	if err != nil {
		return err
	}
	defer s.close()
	if err := h.appendChunk(w, r, s); err != nil {
		return err
	}
	h.uploadHeaders(w, s.Name, s.ID, s.Size)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// finishUpload answers PUT ?digest=: the last chunk, if any, then the digest check; the
// session ends either way once the digest is well formed.
func (h *Handler) finishUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	digest := r.URL.Query().Get("digest")
	if e := checkDigest(digest); e != nil {
		return e
	}
	s, err := h.openSession(r.Context(), rt)
	if err != nil {
		return err
	}
	defer s.close()
	if err := h.appendChunk(w, r, s); err != nil {
		return err
	}
	path := s.f.Name()
	err = h.commitBlob(w, r, rt.name, digest, path, s.Size, s.hs)
	var ae *apiError
	if err != nil && !(errors.As(err, &ae) && ae.Code == codeDigestInvalid) {
		return err // kept: the client may retry the PUT
	}
	h.endSession(r.Context(), s.ID) // its file is already in storage after a commit
	return err
}

// endSession removes a session's file and row, whatever the request's fate.
func (h *Handler) endSession(ctx context.Context, id uuid.UUID) {
	os.Remove(h.uploadPath(id))
	if err := h.d.DB.DeleteRegistryUpload(context.WithoutCancel(ctx), id); err != nil && !errors.Is(err, db.ErrNotFound) {
		h.log.WarnContext(ctx, "delete upload session", "upload", id, "err", err)
	}
}

// uploadStatus answers GET of a session: 204 with its Range.
func (h *Handler) uploadStatus(w http.ResponseWriter, r *http.Request, rt route) error {
	id, err := uuid.Parse(rt.ref)
	if err != nil {
		return errNoSession
	}
	u, err := h.d.DB.GetRegistryUpload(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) || err == nil && u.Name != rt.name {
		return errNoSession
	}
	if err != nil {
		return err
	}
	h.uploadHeaders(w, rt.name, id, u.Size)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cancelUpload answers DELETE of a session: its bytes and row go.
func (h *Handler) cancelUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	s, err := h.openSession(r.Context(), rt)
	if err != nil {
		return err
	}
	defer s.close()
	if err := h.d.DB.DeleteRegistryUpload(r.Context(), s.ID); err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return errNoSession
		}
		return err
	}
	os.Remove(s.f.Name())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
