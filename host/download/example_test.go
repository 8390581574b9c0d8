package download_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/pulpo/pulpo/host/download"
)

func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "abc")
	}))
	defer srv.Close()

	d, err := download.New(download.Config{URL: srv.URL + "/repo/", TLSValidation: true})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	res, err := d.Fetch(context.Background(), download.Request{
		URL: "a.txt", // relative to the remote's URL
		Expected: download.Expect{Size: 3, Digests: map[string]string{
			"sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}},
	}, io.Discard)
	fmt.Println(res.Size, res.Status, res.Digests["sha256"], err)
	// Output: 3 200 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad <nil>
}
