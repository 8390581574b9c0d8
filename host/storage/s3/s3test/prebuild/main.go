// Command prebuild builds the S3 test server (versitygw) into the user cache, where
// s3test finds it, unless the tests are pointed at another server: `make deps` runs it so
// that the build (minutes on a new machine) happens before go test's timeouts start.
package main

import (
	"fmt"
	"os"

	"github.com/pulpo/pulpo/host/storage/s3/s3test"
)

func main() {
	for _, env := range []string{s3test.EnvEndpoint, s3test.EnvServer} {
		if v := os.Getenv(env); v != "" {
			fmt.Printf("deps: S3 test server given by %s\n", env)
			return
		}
	}
	bin, err := s3test.BuildServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "deps: S3 test server:", err)
		os.Exit(1)
	}
	fmt.Println("deps: S3 test server", bin)
}
