package sdk

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/internal/bridge"
)

// Upload is one content_from_upload call: bytes a client uploaded, which the host stored
// and mounted read-only at Path.
type Upload struct {
	abi.UploadRequest
	Log *slog.Logger

	host   bridge.Host
	cancel context.CancelFunc
}

// ReadAll returns the uploaded bytes.
func (u *Upload) ReadAll() ([]byte, error) { return os.ReadFile(u.Path) }

// Lookup finds units by natural key (see Sync.Lookup); scope version is what the
// upload's target (a registry repository) holds.
func (u *Upload) Lookup(ctx context.Context, typeName, scope string, keys ...any) ([]abi.Content, error) {
	return lookup(ctx, u.host, u.cancel, typeName, scope, keys)
}

// ArtifactExists asks whether the host stores the artifact with this sha256.
func (u *Upload) ArtifactExists(ctx context.Context, sha256 string) (bool, int64, error) {
	return artifactExists(ctx, u.host, u.cancel, sha256)
}

// ReadArtifact reads part of a stored artifact (see Sync.ReadArtifact): a pushed
// manifest's config blob, pushed before the manifest.
func (u *Upload) ReadArtifact(ctx context.Context, sha256 string, offset, length int64) ([]byte, int64, error) {
	return readArtifact(ctx, u.host, u.cancel, sha256, offset, length)
}

func handleUpload(h bridge.Host, input []byte) ([]byte, error) {
	// Decoded first: every export a module has answers malformed input alike (the
	// conformance kit checks), whether or not the plugin reads uploads.
	var req abi.UploadRequest
	if err := json.Unmarshal(input, &req); err != nil {
		return nil, Errorf(abi.CodeInvalidInput, "upload request: %v", err)
	}
	if registered.FromUpload == nil {
		return nil, Errorf(abi.CodeUnimplemented, "plugin %s does not create content from uploads", registered.Name)
	}
	if _, ok := registered.byName[req.Type]; !ok {
		return nil, Errorf(abi.CodeInvalidInput, "content type %q is not declared by plugin %s", req.Type, registered.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u := &Upload{UploadRequest: req, Log: newLogger(h), host: h, cancel: cancel}
	var resp abi.UploadResponse
	err := guard(func() error {
		unit, err := registered.FromUpload(ctx, u)
		if err != nil {
			return err
		}
		if len(unit.Artifacts) > 0 {
			return Errorf(abi.CodeInternal, "a unit made from an upload has the uploaded artifact only")
		}
		resp.Content, err = registered.declarative(unit)
		if err == nil && resp.Content.Type != req.Type {
			err = Errorf(abi.CodeInvalidInput, "upload of %s read as %s", req.Type, resp.Content.Type)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}
