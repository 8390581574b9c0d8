package sdk

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/internal/bridge"
)

// Route is a live API prefix the plugin answers, e.g. "/v2/". The host serves everything it
// can natively and calls the plugin only for requests under the prefix.
type Route struct {
	Prefix      string
	Description string
	// Protocol and Registry declare a protocol the host may serve natively
	// (abi.ProtocolOCIDistribution); Handle then answers only hosts that do not.
	Protocol string
	Registry *abi.RegistryRoles
	Handle   func(ctx context.Context, r *Request) (abi.RouteResponse, error)
}

// Request is one live API request.
type Request struct {
	abi.RouteRequest
	Log *slog.Logger

	host   bridge.Host
	cancel context.CancelFunc
}

// Lookup finds units by natural key (see Sync.Lookup).
func (r *Request) Lookup(ctx context.Context, typeName, scope string, keys ...any) ([]abi.Content, error) {
	return lookup(ctx, r.host, r.cancel, typeName, scope, keys)
}

// ArtifactExists asks whether the host stores the artifact with this sha256.
func (r *Request) ArtifactExists(ctx context.Context, sha256 string) (bool, int64, error) {
	return artifactExists(ctx, r.host, r.cancel, sha256)
}

// ReadArtifact reads part of a stored artifact (see Sync.ReadArtifact).
func (r *Request) ReadArtifact(ctx context.Context, sha256 string, offset, length int64) ([]byte, int64, error) {
	return readArtifact(ctx, r.host, r.cancel, sha256, offset, length)
}

// JSON returns a response with v marshalled as an application/json body.
func JSON(status int, v any) (abi.RouteResponse, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return abi.RouteResponse{}, err
	}
	return abi.RouteResponse{Status: status, Headers: map[string]string{"content-type": "application/json"}, Body: b}, nil
}

// match returns the route with the longest prefix of path.
func match(routes []Route, path string) (Route, bool) {
	best, found := Route{}, false
	for _, r := range routes {
		if strings.HasPrefix(path, r.Prefix) && len(r.Prefix) > len(best.Prefix) {
			best, found = r, true
		}
	}
	return best, found
}
