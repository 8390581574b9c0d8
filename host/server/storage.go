package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pulpo/pulpo/host/config"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/storage/fs"
	"github.com/pulpo/pulpo/host/storage/s3"
)

// openedStorage is the configured artifact storage and what the rest of the
// wiring needs to know about it.
type openedStorage struct {
	driver storage.Driver
	// usage reports the capacity of the storage for status/; nil where it
	// has no meaning (a bucket), which status/ reports as null, as Pulp does
	// for cloud storage.
	usage func(context.Context) (total, used, free int64, err error)
	// presign signs redirect URLs for the content app; nil for fs.
	presign s3.Presigner
}

// openStorage builds the driver cfg.Storage names. For s3 it checks that the
// bucket exists and the keys reach it, so a misconfiguration stops start-up.
func openStorage(ctx context.Context, cfg config.Config, log *slog.Logger) (openedStorage, error) {
	switch cfg.Storage {
	case "s3":
		check, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		d, err := s3.New(check, s3.Config{
			Endpoint: cfg.S3Endpoint, PublicEndpoint: cfg.S3PublicEndpoint, Region: cfg.S3Region, Bucket: cfg.S3Bucket,
			AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Prefix: cfg.S3Prefix, PathStyle: cfg.S3PathStyle,
			Logger: log.With("component", "storage"),
		})
		if err != nil {
			return openedStorage{}, fmt.Errorf("storage: %w", err)
		}
		log.InfoContext(ctx, "artifact storage", "storage", "s3", "bucket", cfg.S3Bucket, "endpoint", cfg.S3Endpoint, "prefix", cfg.S3Prefix)
		return openedStorage{driver: d, presign: d}, nil
	case "fs":
		if err := os.MkdirAll(cfg.StorageRoot, 0o755); err != nil {
			return openedStorage{}, fmt.Errorf("storage: %w", err)
		}
		d, err := fs.New(cfg.StorageRoot)
		if err != nil {
			return openedStorage{}, fmt.Errorf("storage: %w", err)
		}
		root := cfg.StorageRoot
		return openedStorage{driver: d, usage: func(context.Context) (int64, int64, int64, error) { return usage(root) }}, nil
	}
	return openedStorage{}, fmt.Errorf("storage: unknown kind %q", cfg.Storage)
}
