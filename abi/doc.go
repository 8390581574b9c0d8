// Package abi is the Go mirror of the Pulpo plugin ABI, version 1 (abi/spec/v1.md).
//
// The specification is the prose document; this package restates it as constants and JSON
// message types so that the host (host/plugin) and the guest SDK (sdk) share one definition.
// Every doc comment here mirrors a section of the spec, and every message type has a golden
// example in testdata/ that the tests decode and re-encode byte for byte.
//
// # Shape of the ABI
//
// A plugin is an Extism plugin: a WebAssembly module whose exports take no parameters and
// return an i32 (0 = success). Input and output travel through the Extism kernel
// ("extism:host/env"): the host writes the export's JSON input, the guest writes its JSON
// output. A plugin states the ABI version it was built for with a marker export
// ([Version.Marker], e.g. "pulpo_abi_version_1_1") and calls host functions in the
// [HostNamespace] module ("pulpo:host/v1"): fetch, content_emit, content_lookup,
// artifact_stat, artifact_read (since 1.1), progress, log, log_enabled and cancelled.
//
// Plugins decide, the host moves bytes: no artifact's bytes in bulk cross the ABI
// (artifact_read returns at most [MaxArtifactReadBytes], for small artifacts such as an
// image config). Upstream
// metadata reaches a plugin as files on a read-only WASI mount ([InDir]); a plugin emits
// declarative content ([DeclarativeContent]) in batches and the host downloads, hashes and
// stores the artifacts it names.
//
// # Compatibility
//
// Unknown JSON members are ignored by both sides. A new optional member or enum value is a
// patch change, a new export or host function a minor change (the marker's minor), anything
// else is a new major version with a new host namespace ("pulpo:host/v2"). See abi/README.md.
//
// Package abi imports only the standard library.
package abi
