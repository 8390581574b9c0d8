// Package s3 is the [storage.Driver] for Amazon S3 and S3-compatible object stores (MinIO,
// Ceph RGW, Versity S3 Gateway, ...). It speaks the S3 REST API with SigV4 through the AWS
// SDK for Go v2, using only the core operations every such store implements; its tests run
// against a real Versity S3 Gateway (see s3test). It needs these permissions on the
// bucket: s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject,
// s3:AbortMultipartUpload and s3:ListMultipartUploadParts.
//
// # Configuring it
//
// An operator names the bucket and how to reach it ([Config]):
//
//   - Endpoint: the service URL, e.g. "https://minio.example.net:9000". Empty means Amazon
//     S3 itself, addressed through Region.
//   - Region: the region requests are signed for; "us-east-1" when empty, which most
//     S3-compatible servers accept whatever their own setting.
//   - Bucket: an existing bucket. [New] checks that it exists and that the keys can see it.
//   - AccessKey, SecretKey: static credentials.
//   - PathStyle: address the bucket as <endpoint>/<bucket>/<key> instead of
//     <bucket>.<endpoint>/<key>. Most self-hosted servers (MinIO, Ceph, Versity) need it
//     unless DNS has a wildcard record for the endpoint.
//   - Prefix: an optional folder inside the bucket, e.g. "pulpo" stores artifact keys
//     under "pulpo/artifact/…", so one bucket can hold several installations.
//   - PublicEndpoint: optional; the URL clients use to reach the store, when it differs
//     from Endpoint (an internal address). Only presigned URLs ([Driver.PresignGet]) use it.
//   - PartSize and Concurrency: tuning for large uploads, described below.
//
// The bucket should have a lifecycle rule that aborts incomplete multipart uploads after a
// day (AbortIncompleteMultipartUpload): the driver aborts every upload it gives up on, but
// a process that is killed mid-upload leaves its parts behind, invisible but billed.
// Versioning is optional; with it, Delete and overwrites keep the old versions until a
// NoncurrentVersionExpiration rule removes them.
//
// # How it maps the Driver contract onto S3
//
// Put reads the object into buffers of PartSize bytes (8 MiB by default), hashing as it
// reads, so it never holds more than Concurrency buffers however large the object is. An
// object that fits one buffer is sent with one PutObject; a larger one becomes a multipart
// upload whose parts are uploaded in parallel while the next part is read, Concurrency
// buffers in all. Each request is signed with the sha256 of its body, which every SigV4
// server verifies, so a body corrupted on the way is refused rather than stored. S3 makes
// an object visible only when its PutObject or CompleteMultipartUpload succeeds, so
// readers never see a partial object; a failed or cancelled Put aborts its multipart
// upload.
//
// Open sends one GET and streams its body as the Reader is read, so reading an object
// through costs one request. Seeking is lazy: the next Read after a seek away from the
// streamed position sends a ranged GET from the new position, which is how
// http.ServeContent answers a Range request without fetching the whole object. Ranged GETs
// are pinned to the object Open saw: to its version id in a versioned bucket, otherwise by
// If-Match on its ETag, so a Reader whose object was replaced in between fails with
// [ErrChanged] instead of mixing two objects.
//
// S3 has no "not found" answer for DELETE, so Delete asks with HEAD first; a concurrent
// Delete of the same key may therefore both succeed. Stat and List leave Info.SHA256 empty.
package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pulpo/pulpo/host/storage"
)

var (
	_ storage.Driver = (*Driver)(nil)
	_ storage.Reader = (*Reader)(nil)
	_ Presigner      = (*Driver)(nil)
)

// ErrChanged is wrapped by the error a [Reader] returns when the object it opened was
// replaced or deleted before a ranged GET that it needed, in a bucket without versioning.
var ErrChanged = errors.New("storage/s3: object changed since it was opened")

const (
	// DefaultPartSize is the multipart part size when Config.PartSize is 0.
	DefaultPartSize = 8 << 20
	// MinPartSize is S3's smallest part other than the last.
	MinPartSize = 5 << 20
	// MaxPartSize bounds Config.PartSize: every Put may hold Concurrency buffers of it.
	MaxPartSize = 512 << 20
	// DefaultConcurrency is the number of part buffers per Put when Config.Concurrency is 0.
	DefaultConcurrency = 3
	// DefaultRegion is used when Config.Region is empty.
	DefaultRegion = "us-east-1"
)

// Config says where the store is and how to use it. See the package documentation.
type Config struct {
	Endpoint  string
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
	PathStyle bool
	Prefix    string
	// PublicEndpoint, when set, replaces Endpoint in presigned URLs.
	PublicEndpoint string
	// PartSize is the multipart part size in bytes (0: DefaultPartSize), between
	// MinPartSize and MaxPartSize. Parts grow past the 1000th (see partSize), so any
	// object up to S3's 5 TiB limit fits in S3's 10,000 parts.
	PartSize int64
	// Concurrency is how many part buffers one Put may hold (0: DefaultConcurrency): one
	// being filled from the reader, the others being uploaded.
	Concurrency int
	// HTTPClient sends the requests; nil means the SDK's default client. Set it for
	// custom TLS roots or proxies.
	HTTPClient *http.Client
	// Logger receives warnings, such as a multipart upload that could not be aborted;
	// nil means slog.Default().
	Logger *slog.Logger
}

// Driver stores objects in one bucket, under an optional prefix. It is safe for concurrent
// use, also by several processes sharing the bucket.
type Driver struct {
	client      *s3api.Client
	presign     *s3api.PresignClient
	bucket      string
	prefix      string // "" or ending in "/"
	partSize    int64
	concurrency int
	log         *slog.Logger
	bufs        sync.Pool // *[]byte of partSize, for Put
	// listPageSize is ListObjectsV2's MaxKeys; 0 leaves the server's default (1000).
	// Tests lower it to see pagination without thousands of objects.
	listPageSize int32
}

// New checks cfg, builds a client and checks with HeadBucket that the bucket exists and
// the credentials reach it, so a misconfiguration fails at startup rather than on the
// first upload. ctx bounds that check only.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	d, err := newDriver(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := d.client.HeadBucket(ctx, &s3api.HeadBucketInput{Bucket: &d.bucket}); err != nil {
		return nil, fmt.Errorf("s3 storage: bucket %q: %w", d.bucket, err)
	}
	return d, nil
}

// newDriver is New without the network check.
func newDriver(cfg Config) (*Driver, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 storage: no bucket configured")
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("s3 storage: access key and secret key are required")
	}
	prefix, err := normalizePrefix(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	for _, ep := range []string{cfg.Endpoint, cfg.PublicEndpoint} {
		if err := checkEndpoint(ep); err != nil {
			return nil, err
		}
	}
	d := &Driver{
		bucket:      cfg.Bucket,
		prefix:      prefix,
		partSize:    cfg.PartSize,
		concurrency: cfg.Concurrency,
		log:         cfg.Logger,
	}
	if d.partSize == 0 {
		d.partSize = DefaultPartSize
	}
	if d.partSize < MinPartSize || d.partSize > MaxPartSize {
		return nil, fmt.Errorf("s3 storage: part size %d is outside [%d, %d]", d.partSize, MinPartSize, MaxPartSize)
	}
	if d.concurrency == 0 {
		d.concurrency = DefaultConcurrency
	}
	if d.concurrency < 1 {
		return nil, fmt.Errorf("s3 storage: concurrency %d is below 1", d.concurrency)
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.bufs.New = func() any { b := make([]byte, d.partSize); return &b }
	d.client = newClient(cfg, cfg.Endpoint)
	presignClient := d.client
	if cfg.PublicEndpoint != "" {
		presignClient = newClient(cfg, cfg.PublicEndpoint)
	}
	d.presign = s3api.NewPresignClient(presignClient)
	return d, nil
}

func newClient(cfg Config, endpoint string) *s3api.Client {
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	creds := aws.Credentials{AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey, Source: "pulpo config"}
	return s3api.New(s3api.Options{
		Region:       region,
		UsePathStyle: cfg.PathStyle,
		BaseEndpoint: nonEmpty(endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		// Only when required: the SDK's default adds CRC checksums (trailing ones over
		// HTTPS, in aws-chunked bodies) that several S3-compatible servers reject. Bodies
		// are protected by the signed sha256 payload hash instead (withPayloadHash).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		HTTPClient:                 httpClient(cfg.HTTPClient),
	})
}

// httpClient keeps a nil *http.Client from becoming a non-nil interface.
func httpClient(c *http.Client) s3api.HTTPClient {
	if c == nil {
		return nil
	}
	return c
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func checkEndpoint(ep string) error {
	if ep == "" {
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("s3 storage: endpoint: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("s3 storage: endpoint %q is not an http(s) URL", ep)
	}
	return nil
}

// normalizePrefix turns "pulpo" and "pulpo/" into "pulpo/", and rejects what could not
// begin a valid key, so prefix+key is always a key inside the prefix.
func normalizePrefix(p string) (string, error) {
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return "", nil
	}
	if err := storage.ValidKey(p); err != nil {
		return "", fmt.Errorf("s3 storage: prefix: %w", err)
	}
	return p + "/", nil
}

// objectKey returns the bucket key of key.
func (d *Driver) objectKey(key string) (string, error) {
	if err := storage.ValidKey(key); err != nil {
		return "", err
	}
	return d.prefix + key, nil
}

// Stat implements [storage.Driver]. Info.SHA256 is empty.
func (d *Driver) Stat(ctx context.Context, key string) (storage.Info, error) {
	objKey, err := d.objectKey(key)
	if err != nil {
		return storage.Info{}, err
	}
	out, err := d.client.HeadObject(ctx, &s3api.HeadObjectInput{Bucket: &d.bucket, Key: &objKey})
	if err != nil {
		return storage.Info{}, opError("stat", key, err)
	}
	return storage.Info{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// Delete implements [storage.Driver]. It sends HEAD then DELETE, because S3 answers a
// DELETE of a missing key with success.
func (d *Driver) Delete(ctx context.Context, key string) error {
	objKey, err := d.objectKey(key)
	if err != nil {
		return err
	}
	if _, err := d.client.HeadObject(ctx, &s3api.HeadObjectInput{Bucket: &d.bucket, Key: &objKey}); err != nil {
		return opError("delete", key, err)
	}
	if _, err := d.client.DeleteObject(ctx, &s3api.DeleteObjectInput{Bucket: &d.bucket, Key: &objKey}); err != nil {
		return opError("delete", key, err)
	}
	return nil
}

// List implements [storage.Driver] with ListObjectsV2, a page of up to 1000 keys at a
// time. Objects in the bucket whose keys are not valid storage keys (written by something
// else) are skipped. Info.SHA256 is empty.
func (d *Driver) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := storage.ValidPrefix(prefix); err != nil {
		return err
	}
	full := d.prefix + prefix
	in := &s3api.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &full}
	if d.listPageSize > 0 {
		in.MaxKeys = &d.listPageSize
	}
	pages := s3api.NewListObjectsV2Paginator(d.client, in)
	for pages.HasMorePages() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %q: %w", prefix, err)
		}
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list %q: %w", prefix, err)
		}
		for _, obj := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(obj.Key), d.prefix)
			if !ok || storage.ValidKey(key) != nil {
				continue
			}
			info := storage.Info{Key: key, Size: aws.ToInt64(obj.Size), ModTime: aws.ToTime(obj.LastModified)}
			if err := fn(info); err != nil {
				return fmt.Errorf("list %q: %w", prefix, err)
			}
		}
	}
	return nil
}

// opError wraps err from operation op on key, adding [storage.ErrNotFound] when S3 said
// the object does not exist.
func opError(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%s %s: %w", op, key, storage.ErrNotFound)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// isNotFound reports a 404 about the object. A missing bucket is a 404 too, but a
// misconfiguration, not a missing object: GET says NoSuchBucket; HEAD has no body to say
// it, which is one reason New checks the bucket.
func isNotFound(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchBucket" {
		return false
	}
	return httpStatus(err) == http.StatusNotFound
}

// httpStatus returns the status code of the response that caused err, or 0.
func httpStatus(err error) int {
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		return respErr.HTTPStatusCode()
	}
	return 0
}

// hexSum is the lowercase hex of a finished sha256.
func hexSum(sum [sha256.Size]byte) string { return hex.EncodeToString(sum[:]) }

// responseTime returns the Date header of the response behind an operation's result
// metadata: the server's clock when it stored the object, close to the Last-Modified that
// Stat will report (S3 takes that from the start of the request, in whole seconds). It
// saves a HEAD after every Put. Without a Date header it returns the local time.
func responseTime(raw any) time.Time {
	if resp, ok := raw.(*smithyhttp.Response); ok && resp != nil {
		if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			return t
		}
	}
	return time.Now()
}
