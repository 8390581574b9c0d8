package s3

import (
	"context"
	"fmt"
	"time"

	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
)

// MaxPresignTTL is the longest validity SigV4 allows a presigned URL.
const MaxPresignTTL = 7 * 24 * time.Hour

// Presigner is an optional capability of a driver whose objects clients can fetch
// directly. *Driver implements it.
//
// The content app can use it to answer a GET for an artifact with a redirect (302) to the
// presigned URL instead of streaming the bytes through the host: the client then downloads
// from the object store, Range requests included, and only the redirect passes through
// Pulpo. Check for it with a type assertion and fall back to serving the [storage.Reader].
// A presigned URL names the key and not its bytes; it is as good as a download the host
// itself would allow, for ttl, to whoever holds it, so keep ttl short (minutes) and do not
// presign objects a content guard protects unless the guard has just admitted the request.
type Presigner interface {
	// PresignGet returns a URL that answers GET (not HEAD, which needs its own signature) for key
	// during ttl, without credentials, with the response headers resp asks for. It signs
	// locally and sends no request, so it succeeds for a missing key too; the URL then
	// answers 404.
	PresignGet(ctx context.Context, key string, ttl time.Duration, resp ResponseHeaders) (string, error)
}

// ResponseHeaders are headers a presigned GET answers with in place of those stored with
// the object (S3's response-content-type and response-content-disposition parameters,
// which the signature covers). Empty fields leave the stored header.
type ResponseHeaders struct {
	ContentType        string
	ContentDisposition string
}

// PresignGet implements [Presigner]. The URL starts with Config.PublicEndpoint when set,
// else Config.Endpoint. ttl must be positive and at most [MaxPresignTTL].
func (d *Driver) PresignGet(ctx context.Context, key string, ttl time.Duration, resp ResponseHeaders) (string, error) {
	objKey, err := d.objectKey(key)
	if err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > MaxPresignTTL {
		return "", fmt.Errorf("presign %s: ttl %v is not in (0, %v]", key, ttl, MaxPresignTTL)
	}
	in := &s3api.GetObjectInput{Bucket: &d.bucket, Key: &objKey,
		ResponseContentType: nonEmpty(resp.ContentType), ResponseContentDisposition: nonEmpty(resp.ContentDisposition)}
	req, err := d.presign.PresignGetObject(ctx, in, s3api.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presign %s: %w", key, err)
	}
	return req.URL, nil
}
