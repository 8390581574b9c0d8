package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pulpo/pulpo/host/storage"
)

// headSize is how many of the first bytes a Reader keeps, so seeking back to 0 after
// reading them costs no request: http.ServeContent reads 512 bytes to sniff the content
// type when none is set, then seeks back to the start.
const headSize = 512

// maxSkip is how far forward a Reader reads and discards its open body to reach a seek
// target rather than sending a ranged GET: 256 KiB arrive in about the time a new request
// takes to start answering on a fast link.
const maxSkip = 256 << 10

// Reader is the [storage.Reader] returned by [Driver.Open]. It streams the body of the GET
// that Open sent and sends a ranged GET when a Read follows a seek elsewhere (see the
// package documentation). Its requests use the ctx given to Open: cancel it, or Close the
// Reader, to stop them. It is not safe for concurrent use.
type Reader struct {
	d      *Driver
	ctx    context.Context // Open's, for the ranged GETs that Read sends
	key    string          // as the caller named it, for errors
	objKey string
	size   int64
	mod    time.Time
	// etag and version pin ranged GETs to the object Open saw. version is set only in a
	// versioned bucket, where the old object stays readable after a replacement.
	etag    string
	version string

	pos     int64         // the position Read continues from
	body    io.ReadCloser // the open GET's body, or nil
	bodyPos int64         // the position body continues from
	closed  bool
	// head keeps the object's bytes [0, len(head)) as they are read from the start, up
	// to headSize; headDone stops it growing once a read goes past headSize or starts
	// elsewhere.
	head     []byte
	headDone bool
}

// Open implements [storage.Driver]. It sends the GET for the whole object at once but reads
// the body only as the Reader is read. A GET rather than a HEAD, because then the size,
// time and ETag describe exactly the bytes the body holds: a HEAD and a later GET could
// see two objects if the key was replaced in between.
func (d *Driver) Open(ctx context.Context, key string) (storage.Reader, error) {
	objKey, err := d.objectKey(key)
	if err != nil {
		return nil, err
	}
	out, err := d.client.GetObject(ctx, &s3api.GetObjectInput{Bucket: &d.bucket, Key: &objKey})
	if err != nil {
		return nil, opError("open", key, err)
	}
	r := &Reader{
		d:      d,
		ctx:    ctx,
		key:    key,
		objKey: objKey,
		size:   aws.ToInt64(out.ContentLength),
		mod:    aws.ToTime(out.LastModified),
		etag:   aws.ToString(out.ETag),
		body:   out.Body,
	}
	// Unversioned buckets report the version id "null", which names no version.
	if v := aws.ToString(out.VersionId); v != "" && v != "null" {
		r.version = v
	}
	return r, nil
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("read %s: %w", r.key, os.ErrClosed)
	}
	if r.pos >= r.size {
		r.closeBody()
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.pos < int64(len(r.head)) {
		n := copy(p, r.head[r.pos:])
		r.pos += int64(n)
		return n, nil
	}
	if r.body != nil && r.bodyPos != r.pos {
		r.skip()
	}
	if r.body == nil {
		if err := r.get(); err != nil {
			return 0, err
		}
	}
	p = p[:min(int64(len(p)), r.size-r.pos)]
	n, err := r.body.Read(p)
	r.keepHead(p[:n])
	r.pos += int64(n)
	r.bodyPos = r.pos
	if err == io.EOF {
		r.closeBody()
		if r.pos < r.size {
			return n, fmt.Errorf("read %s: body ended at %d of %d bytes: %w", r.key, r.pos, r.size, io.ErrUnexpectedEOF)
		}
		err = nil
	}
	if err != nil {
		r.closeBody()
		return n, fmt.Errorf("read %s: %w", r.key, err)
	}
	if r.pos == r.size {
		return n, io.EOF
	}
	return n, nil
}

// keepHead appends b, just read from the body at bodyPos, to head while head is the
// whole prefix of the object read so far and fits in headSize.
func (r *Reader) keepHead(b []byte) {
	if r.headDone {
		return
	}
	if r.bodyPos != int64(len(r.head)) || len(r.head)+len(b) > headSize {
		r.headDone = true
		return
	}
	r.head = append(r.head, b...)
}

// skip moves the open body forward to pos by discarding a few bytes, or closes it when
// pos is behind it or too far ahead.
func (r *Reader) skip() {
	if gap := r.pos - r.bodyPos; gap > 0 && gap <= maxSkip {
		n, err := io.CopyN(io.Discard, r.body, gap)
		r.bodyPos += n
		if err == nil {
			return
		}
	}
	r.closeBody()
}

// get sends a ranged GET from pos, pinned to the object Open saw.
func (r *Reader) get() error {
	in := &s3api.GetObjectInput{
		Bucket: &r.d.bucket,
		Key:    &r.objKey,
		Range:  aws.String("bytes=" + strconv.FormatInt(r.pos, 10) + "-"),
	}
	if r.version != "" {
		in.VersionId = &r.version
	} else if r.etag != "" {
		in.IfMatch = &r.etag
	}
	out, err := r.d.client.GetObject(r.ctx, in)
	switch {
	case err == nil:
	case httpStatus(err) == http.StatusPreconditionFailed, isNotFound(err):
		return fmt.Errorf("read %s at %d: %w", r.key, r.pos, ErrChanged)
	default:
		return fmt.Errorf("read %s at %d: %w", r.key, r.pos, err)
	}
	if got := aws.ToInt64(out.ContentLength); got != r.size-r.pos {
		// Only a server ignoring If-Match could get here; refuse to mix objects anyway.
		_ = out.Body.Close()
		return fmt.Errorf("read %s at %d: ranged GET returned %d bytes, want %d: %w", r.key, r.pos, got, r.size-r.pos, ErrChanged)
	}
	r.body = out.Body
	r.bodyPos = r.pos
	return nil
}

func (r *Reader) closeBody() {
	if r.body != nil {
		_ = r.body.Close() // a GET body's Close reports nothing worth acting on
		r.body = nil
	}
}

// Seek implements io.Seeker. It only moves the position; the next Read does the work.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, fmt.Errorf("seek %s: %w", r.key, os.ErrClosed)
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, fmt.Errorf("seek %s: invalid whence %d", r.key, whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("seek %s: %w", r.key, errNegativePosition)
	}
	r.pos = abs
	return abs, nil
}

var errNegativePosition = errors.New("negative position")

// Close closes the open body, if any. Closing twice is harmless.
func (r *Reader) Close() error {
	r.closeBody()
	r.closed, r.head = true, nil
	return nil
}

// Size returns the object's length in bytes.
func (r *Reader) Size() int64 { return r.size }

// ModTime returns the object's Last-Modified time (S3 keeps whole seconds).
func (r *Reader) ModTime() time.Time { return r.mod }
