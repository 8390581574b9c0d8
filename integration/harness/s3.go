package harness

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/pulpo/pulpo/host/storage/s3/s3test"
)

// Bucket is an empty bucket on the test S3 server (see s3test: a versitygw
// built once per machine into the user cache and started once per test
// binary, or the server PULPO_TEST_S3_ENDPOINT names) for pulpo processes to
// store their artifacts in. Without a server the test skips, or fails when
// CI is set.
//
//	b := harness.NewBucket(t)
//	srv := harness.Start(t, harness.Options{Env: b.Env()})
type Bucket struct {
	Server *s3test.Server
	Name   string
}

// NewBucket creates a bucket, emptied and removed when t ends (after the
// processes started later in t have stopped).
func NewBucket(t testing.TB) Bucket {
	t.Helper()
	Binary(t) // skip in -short mode before starting a server
	srv := s3test.Start(t)
	return Bucket{Server: srv, Name: srv.NewBucket(t)}
}

// Env returns the settings that make a pulpo process store its artifacts in
// the bucket, for Options.Env; add PULPO_CONTENT_REDIRECT=true for
// presigned redirects.
func (b Bucket) Env() []string {
	return []string{
		"PULPO_STORAGE=s3",
		"PULPO_S3_BUCKET=" + b.Name,
		"PULPO_S3_ENDPOINT=" + b.Server.Endpoint,
		"PULPO_S3_REGION=" + b.Server.Region,
		"PULPO_S3_ACCESS_KEY=" + b.Server.AccessKey,
		"PULPO_S3_SECRET_KEY=" + b.Server.SecretKey,
		"PULPO_S3_PATH_STYLE=true",
	}
}

// Keys lists the keys of every object in the bucket, sorted.
func (b Bucket) Keys(t testing.TB) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	pages := s3api.NewListObjectsV2Paginator(b.Server.Client, &s3api.ListObjectsV2Input{Bucket: &b.Name})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("harness: list bucket %s: %v", b.Name, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys
}
