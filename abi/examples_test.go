package abi_test

import "github.com/pulpo/pulpo/abi"

// describeFile is what a pulp_file equivalent declares.
var describeFile = abi.Describe{
	ABIVersion:  "1.0",
	Name:        "file",
	Version:     "0.1.0",
	Description: "Files listed in a PULP_MANIFEST, served as a directory tree",
	ContentTypes: []abi.ContentType{{
		Name:         "file.file",
		Description:  "A file at a relative path",
		EndpointName: "files",
		Fields: []abi.Field{
			{Name: "relative_path", Type: abi.TypeString, Required: true, Description: "Path of the file in a publication"},
			{Name: "digest", Type: abi.TypeString, Required: true, Description: "SHA-256 of the file, lowercase hex"},
		},
		NaturalKey: []string{"relative_path", "digest"},
		RepoKey:    []string{"relative_path"},
		Artifacts:  abi.ArtifactSpec{Count: abi.ArtifactsOne, RelativePathField: "relative_path"},
	}},
	RepositoryTypes: []abi.RepositoryType{{
		Name:         "file.file",
		ContentTypes: []string{"file.file"},
		RemoteTypes:  []string{"file.file"},
		Fields: []abi.Field{
			{Name: "manifest", Type: abi.TypeString, Description: "File name of the manifest autopublish writes", Default: raw(`"PULP_MANIFEST"`)},
			{Name: "autopublish", Type: abi.TypeBoolean, Description: "Publish every new version", Default: raw(`false`)},
		},
	}},
	RemoteTypes: []abi.RemoteType{{
		Name:        "file.file",
		Description: "The url points at a PULP_MANIFEST",
		Policies:    []string{abi.PolicyImmediate, abi.PolicyOnDemand, abi.PolicyStreamed},
	}},
	PublicationTypes: []abi.PublicationType{{
		Name:   "file.file",
		Fields: []abi.Field{{Name: "manifest", Type: abi.TypeString, Description: "File name of the manifest to write; null writes none", Default: raw(`"PULP_MANIFEST"`)}},
	}},
	DistributionTypes: []abi.DistributionType{{Name: "file.file", ServeFromPublication: true}},
	SyncOptions: []abi.Field{
		{Name: "optimize", Type: abi.TypeBoolean, Description: "Skip the sync when nothing changed upstream", Default: raw(`true`)},
	},
}

// describeContainer is what a pulp_container equivalent declares.
var describeContainer = abi.Describe{
	ABIVersion: "1.0",
	Name:       "container",
	Version:    "0.1.0",
	ContentTypes: []abi.ContentType{
		{
			Name:         "container.blob",
			EndpointName: "blobs",
			Fields:       []abi.Field{{Name: "digest", Type: abi.TypeString, Required: true, Description: "sha256:<hex>"}},
			NaturalKey:   []string{"digest"},
			Artifacts:    abi.ArtifactSpec{Count: abi.ArtifactsOne, RelativePathField: "digest"},
		},
		{
			Name:         "container.manifest",
			EndpointName: "manifests",
			Fields: []abi.Field{
				{Name: "digest", Type: abi.TypeString, Required: true},
				{Name: "schema_version", Type: abi.TypeInteger, Required: true},
				{Name: "media_type", Type: abi.TypeString, Required: true, Enum: []string{
					"application/vnd.docker.distribution.manifest.v1+json",
					"application/vnd.docker.distribution.manifest.v2+json",
					"application/vnd.docker.distribution.manifest.list.v2+json",
					"application/vnd.oci.image.manifest.v1+json",
					"application/vnd.oci.image.index.v1+json",
				}},
				{Name: "type", Type: abi.TypeString, Description: "image, index, artifact, helm, cosign_signature, ..."},
				{Name: "data", Type: abi.TypeString, Description: "The manifest JSON exactly as received"},
				{Name: "annotations", Type: abi.TypeObject},
				{Name: "labels", Type: abi.TypeObject},
				{Name: "architecture", Type: abi.TypeString},
				{Name: "os", Type: abi.TypeString},
				{Name: "compressed_image_size", Type: abi.TypeInteger},
			},
			NaturalKey: []string{"digest"},
			Artifacts:  abi.ArtifactSpec{Count: abi.ArtifactsNone},
			Relations: []abi.RelationType{
				{Name: "blobs", To: "container.blob", Many: true, Description: "Layers"},
				{Name: "config_blob", To: "container.blob"},
				{Name: "listed_manifests", To: "container.manifest", Many: true, Description: "Entries of an index",
					Fields: []abi.Field{
						{Name: "architecture", Type: abi.TypeString},
						{Name: "os", Type: abi.TypeString},
						{Name: "os_version", Type: abi.TypeString},
						{Name: "os_features", Type: abi.TypeArray, Items: abi.TypeString},
						{Name: "features", Type: abi.TypeArray, Items: abi.TypeString},
						{Name: "variant", Type: abi.TypeString},
					}},
			},
		},
		{
			Name:         "container.tag",
			EndpointName: "tags",
			Fields:       []abi.Field{{Name: "name", Type: abi.TypeString, Required: true}},
			NaturalKey:   []string{"name"},
			Artifacts:    abi.ArtifactSpec{Count: abi.ArtifactsNone},
			Relations:    []abi.RelationType{{Name: "tagged_manifest", To: "container.manifest", Required: true}},
		},
	},
	RepositoryTypes: []abi.RepositoryType{{
		Name:         "container.container",
		ContentTypes: []string{"container.blob", "container.manifest", "container.tag"},
		RemoteTypes:  []string{"container.container"},
	}},
	RemoteTypes: []abi.RemoteType{{
		Name: "container.container",
		Fields: []abi.Field{
			{Name: "upstream_name", Type: abi.TypeString, Required: true, Description: "Repository name on the upstream registry"},
			{Name: "includes", Type: abi.TypeArray, Items: abi.TypeString, Description: "Tag patterns or sha256: digests to sync"},
			{Name: "excludes", Type: abi.TypeArray, Items: abi.TypeString},
			{Name: "include_foreign_layers", Type: abi.TypeBoolean, Default: raw(`false`)},
		},
	}},
	DistributionTypes: []abi.DistributionType{{
		Name:   "container.container",
		Fields: []abi.Field{{Name: "private", Type: abi.TypeBoolean, Default: raw(`false`)}},
	}},
	SyncOptions: []abi.Field{{Name: "signed_only", Type: abi.TypeBoolean, Default: raw(`false`)}},
	Routes:      []abi.Route{{Prefix: "/v2/", Description: "OCI distribution API"}},
}
