package s3

// SetListPageSize sets how many keys each ListObjectsV2 request of d asks for.
func SetListPageSize(d *Driver, n int32) { d.listPageSize = n }
