package s3

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/pulpo/pulpo/host/storage"
)

const (
	// maxParts is S3's limit on the parts of one multipart upload.
	maxParts = 10000
	// partsPerStep is how many parts share one size before partSize grows a step.
	partsPerStep = 1000
	// maxPartBytes is S3's largest part.
	maxPartBytes = 5 << 30
	// commitTimeout bounds a request that makes an object visible. Such a request runs
	// detached from the caller's ctx (see Put).
	commitTimeout = 5 * time.Minute
	// partGrace is how long parts in flight may finish after ctx ended (see putMultipart).
	partGrace = 30 * time.Second
	// abortTimeout bounds aborting a failed multipart upload, all attempts included.
	abortTimeout = time.Minute
	// abortAttempts and abortBackoff pace the retries of an abort whose upload is still
	// there: 200 ms, 400 ms, ... 3.2 s, long enough for cancelled part requests to end.
	abortAttempts = 6
	abortBackoff  = 100 * time.Millisecond
)

// Put implements [storage.Driver]. See the package documentation for how it uploads.
//
// It checks ctx between reads of r; a reader that can block should itself be bound to ctx
// (an HTTP response body is). Once all of r is read and ctx is still live, the request
// that makes the object visible (PutObject, or CompleteMultipartUpload) is sent detached
// from ctx, bounded by its own timeout: a cancellation arriving during it would otherwise
// leave the caller unable to tell whether the object was stored, and the contract is that
// an error leaves the previous object in place.
func (d *Driver) Put(ctx context.Context, key string, r io.Reader) (storage.Info, error) {
	objKey, err := d.objectKey(key)
	if err != nil {
		return storage.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	obj := sha256.New()
	// Buffers go back to the pool as soon as their request returned. That is safe: the
	// SDK closes a request body (a locked wrapper) before returning, so a transport
	// goroutine still sending it reads EOF rather than the buffer's next contents.
	bufp := d.bufs.Get().(*[]byte)
	first, eof, err := fill(ctx, r, *bufp, obj, nil)
	if err != nil {
		d.bufs.Put(bufp)
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	var info storage.Info
	if eof {
		info, err = d.putSingle(ctx, objKey, (*bufp)[:first], obj)
		d.bufs.Put(bufp)
	} else {
		info, err = d.putMultipart(ctx, objKey, bufp, r, obj)
	}
	if err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	info.Key = key
	return info, nil
}

// putSingle stores body, the whole object whose sha256 is in obj, with one PutObject.
func (d *Driver) putSingle(ctx context.Context, objKey string, body []byte, obj hash.Hash) (storage.Info, error) {
	var sum [sha256.Size]byte
	obj.Sum(sum[:0])
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	out, err := d.client.PutObject(cctx, &s3api.PutObjectInput{
		Bucket:        &d.bucket,
		Key:           &objKey,
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	}, withPayloadHash(sum[:]))
	if err != nil {
		return storage.Info{}, err
	}
	return storage.Info{
		Size:    int64(len(body)),
		SHA256:  hexSum(sum),
		ModTime: responseTime(awsmiddleware.GetRawResponse(out.ResultMetadata)),
	}, nil
}

// putMultipart uploads an object larger than one part: *firstp, a full part buffer from
// d.bufs, then the rest of r. obj has hashed *firstp and keeps hashing r. The upload is
// aborted on any error.
//
// Parts are sent detached from ctx. When ctx ends or a read fails, no new part starts,
// and the parts in flight are left partGrace to finish before they are cancelled: a part
// request cancelled after its body went out can still be stored by the server after the
// abort, which would leave the upload behind; one that finished cannot.
func (d *Driver) putMultipart(ctx context.Context, objKey string, firstp *[]byte, r io.Reader, obj hash.Hash) (info storage.Info, err error) {
	// The first part's sha256 is computed here rather than in fill: whether a part is
	// needed at all was only known once the buffer filled.
	firstSum := sha256.Sum256(*firstp)
	created, err := d.client.CreateMultipartUpload(ctx, &s3api.CreateMultipartUploadInput{Bucket: &d.bucket, Key: &objKey})
	if err != nil {
		d.bufs.Put(firstp)
		return info, fmt.Errorf("create multipart upload: %w", err)
	}
	up := &upload{d: d, key: objKey, id: aws.ToString(created.UploadId)}
	defer func() {
		if err != nil {
			up.abort(ctx)
		}
	}()

	pctx, cancelParts := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelParts()
	stopGrace := context.AfterFunc(ctx, func() { time.AfterFunc(partGrace, cancelParts) })
	defer stopGrace()

	var (
		wg       sync.WaitGroup
		failOnce sync.Once
		failed   = make(chan struct{}) // closed when a part fails
		partErr  error                 // the first failure, set before failed closes
	)
	// slots holds one token per part buffer in use, bounding memory to d.concurrency
	// buffers: the one being filled and those being uploaded.
	slots := make(chan struct{}, d.concurrency)
	send := func(n int32, body []byte, sum [sha256.Size]byte, release func()) {
		wg.Go(func() {
			defer func() { release(); <-slots }()
			if err := up.part(pctx, n, body, sum); err != nil {
				failOnce.Do(func() { partErr = err; close(failed) })
			}
		})
	}

	slots <- struct{}{}
	send(1, *firstp, firstSum, func() { d.bufs.Put(firstp) })
	size := int64(len(*firstp))
	var readErr error
	for n := int32(2); ; n++ {
		select {
		case slots <- struct{}{}:
		case <-failed:
		case <-ctx.Done():
		}
		if stopped(ctx, failed) {
			break // the checks after wg.Wait say why; a slot taken in the race stays taken
		}
		if n > maxParts {
			readErr = fmt.Errorf("object larger than %d parts", maxParts)
			break
		}
		buf, release := d.partBuffer(n)
		part := sha256.New()
		m, eof, err := fill(ctx, r, buf, obj, part)
		size += int64(m)
		if err != nil || m == 0 {
			release()
			<-slots
			readErr = err
		} else {
			var sum [sha256.Size]byte
			part.Sum(sum[:0])
			send(n, buf[:m], sum, release)
		}
		if err != nil || eof {
			break
		}
	}
	wg.Wait()
	switch {
	case ctx.Err() != nil:
		return info, ctx.Err()
	case partErr != nil: // a read error after a failed part is not the cause
		return info, partErr
	case readErr != nil:
		return info, readErr
	}

	var sum [sha256.Size]byte
	obj.Sum(sum[:0])
	mtime, err := up.complete(ctx)
	if err != nil {
		return info, err
	}
	return storage.Info{Size: size, SHA256: hexSum(sum), ModTime: mtime}, nil
}

// stopped reports whether ctx ended or a part failed.
func stopped(ctx context.Context, failed <-chan struct{}) bool {
	select {
	case <-failed:
		return true
	default:
		return ctx.Err() != nil
	}
}

// partBuffer returns a buffer for part n and the function that gives it back.
func (d *Driver) partBuffer(n int32) ([]byte, func()) {
	size := partSize(d.partSize, n)
	if size == d.partSize {
		bufp := d.bufs.Get().(*[]byte)
		return *bufp, func() { d.bufs.Put(bufp) }
	}
	return make([]byte, size), func() {}
}

// partSize returns the size of part n (from 1): base for the first 1000 parts, twice
// base for the next 1000, and so on, capped at S3's 5 GiB. With the 8 MiB default the
// 10,000 parts hold 430 GiB; with 512 MiB, over S3's 5 TiB object limit. Growing only
// after 1000 parts keeps the memory of ordinary uploads at base-sized buffers.
func partSize(base int64, n int32) int64 {
	return min(base*int64((n-1)/partsPerStep+1), maxPartBytes)
}

// upload is one multipart upload in progress.
type upload struct {
	d   *Driver
	key string
	id  string

	mu    sync.Mutex
	parts []types.CompletedPart
}

// part uploads part n.
func (u *upload) part(ctx context.Context, n int32, body []byte, sum [sha256.Size]byte) error {
	out, err := u.d.client.UploadPart(ctx, &s3api.UploadPartInput{
		Bucket:        &u.d.bucket,
		Key:           &u.key,
		UploadId:      &u.id,
		PartNumber:    aws.Int32(n),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	}, withPayloadHash(sum[:]))
	if err != nil {
		return fmt.Errorf("upload part %d: %w", n, err)
	}
	u.mu.Lock()
	u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	u.mu.Unlock()
	return nil
}

// complete completes the upload, detached from ctx as Put explains, and returns the
// server's time.
func (u *upload) complete(ctx context.Context) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	slices.SortFunc(u.parts, func(a, b types.CompletedPart) int {
		return cmp.Compare(aws.ToInt32(a.PartNumber), aws.ToInt32(b.PartNumber))
	})
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	out, err := u.d.client.CompleteMultipartUpload(cctx, &s3api.CompleteMultipartUploadInput{
		Bucket:          &u.d.bucket,
		Key:             &u.key,
		UploadId:        &u.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("complete multipart upload: %w", err)
	}
	return responseTime(awsmiddleware.GetRawResponse(out.ResultMetadata)), nil
}

// abort aborts the upload so its parts are deleted, and checks with ListParts that it is
// gone: S3 documents that a part still being uploaded may land after the abort, and
// cancelled part requests can still be running on the server. It retries a few times,
// detached from ctx, which is often why the upload failed. A failure is logged, not
// returned: the caller already has the error that matters, and the bucket's lifecycle
// rule removes the parts later.
func (u *upload) abort(ctx context.Context) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	var err error
	for attempt := range abortAttempts {
		if attempt > 0 {
			select {
			case <-time.After(abortBackoff << attempt):
			case <-actx.Done():
			}
		}
		_, err = u.d.client.AbortMultipartUpload(actx, &s3api.AbortMultipartUploadInput{
			Bucket:   &u.d.bucket,
			Key:      &u.key,
			UploadId: &u.id,
		})
		if err != nil && httpStatus(err) != http.StatusNotFound {
			continue
		}
		_, err = u.d.client.ListParts(actx, &s3api.ListPartsInput{
			Bucket:   &u.d.bucket,
			Key:      &u.key,
			UploadId: &u.id,
			MaxParts: aws.Int32(1),
		})
		if httpStatus(err) == http.StatusNotFound { // NoSuchUpload: gone for good
			return
		}
		if err == nil {
			err = errors.New("upload still listed after abort")
		}
	}
	u.d.log.WarnContext(ctx, "s3 storage: could not abort multipart upload; its parts stay until the bucket's lifecycle rule removes them",
		"bucket", u.d.bucket, "key", u.key, "upload_id", u.id, "err", err)
}

// fill reads r into buf until buf is full or r ends, writing what it read to obj and, if
// not nil, to part. It returns the bytes read and whether r ended. It checks ctx after
// every read, because r need not honour ctx.
func fill(ctx context.Context, r io.Reader, buf []byte, obj, part hash.Hash) (n int, eof bool, err error) {
	for n < len(buf) {
		m, rerr := r.Read(buf[n:])
		n += m
		if rerr == io.EOF {
			eof = true
			break
		}
		if rerr != nil {
			return n, false, fmt.Errorf("read: %w", rerr)
		}
		if err := ctx.Err(); err != nil {
			return n, false, err
		}
	}
	if err := ctx.Err(); err != nil {
		return n, false, err
	}
	obj.Write(buf[:n]) // hash.Hash never returns an error
	if part != nil {
		part.Write(buf[:n])
	}
	return n, eof, nil
}

// withPayloadHash signs a request with sum, the sha256 of its body, as the payload hash
// (x-amz-content-sha256). The server recomputes it and refuses a body that does not match,
// so what is stored is what Put hashed. Without it the SDK would hash the body again over
// HTTP, and over HTTPS send it as UNSIGNED-PAYLOAD, unchecked.
func withPayloadHash(sum []byte) func(*s3api.Options) {
	h := hex.EncodeToString(sum)
	return s3api.WithAPIOptions(func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("PulpoPayloadHash",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				return next.HandleInitialize(v4.SetPayloadHash(ctx, h), in)
			}), middleware.After)
	})
}
