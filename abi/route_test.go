package abi_test

import (
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
)

// TestRegistryRouteValidation checks the oci-distribution declaration's roles against
// the types they name.
func TestRegistryRouteValidation(t *testing.T) {
	t.Parallel()
	if err := describeContainer.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit func(d *abi.Describe)
		want string
	}{
		"no roles":           {func(d *abi.Describe) { d.Routes[0].Registry = nil }, "needs registry roles"},
		"roles, no protocol": {func(d *abi.Describe) { d.Routes[0].Protocol = "" }, "registry needs protocol"},
		"unknown blob type":  {func(d *abi.Describe) { d.Routes[0].Registry.BlobType = "container.nope" }, "blob_type"},
		"blob not by digest": {func(d *abi.Describe) { d.Routes[0].Registry.BlobType = "container.tag" }, "natural key [digest]"},
		"tag without relation": {func(d *abi.Describe) { d.Routes[0].Registry.TagType = "container.blob" },
			"want string fields name and digest"},
		"manifest without media_type": {func(d *abi.Describe) { d.Routes[0].Registry.ManifestType = "container.blob" }, "media_type"},
		"unknown distribution":        {func(d *abi.Describe) { d.Routes[0].Registry.DistributionType = "container.x" }, "distribution_type"},
		"unknown push repository":     {func(d *abi.Describe) { d.Routes[0].Registry.PushRepositoryType = "container.x" }, "push_repository_type"},
	} {
		d := clone(t, describeContainer)
		tc.edit(&d)
		err := d.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
	// Another protocol is left to the hosts that know it.
	d := clone(t, describeContainer)
	d.Routes[0].Protocol, d.Routes[0].Registry = "x-other", nil
	if err := d.Validate(); err != nil {
		t.Errorf("unknown protocol: %v", err)
	}
}
