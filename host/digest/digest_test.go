package digest

import "testing"

func TestSums(t *testing.T) {
	t.Parallel()
	h, err := New("md5", "sha512")
	if err != nil {
		t.Fatal(err)
	}
	h.Write([]byte("abc"))
	s := h.Sums()
	want := map[string]string{
		"md5":    "900150983cd24fb0d6963f7d28e17f72",
		"sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"sha512": "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
	}
	for k, v := range want {
		if s[k] != v || !Valid(k, s[k]) {
			t.Errorf("%s = %s, want %s", k, s[k], v)
		}
	}
	if h.Size() != 3 || len(s) != 3 {
		t.Fatalf("size %d sums %v", h.Size(), s)
	}
	if _, err := New("crc32"); err == nil {
		t.Fatal("unknown digest accepted")
	}
	if Valid("sha256", "ABC") || Valid("sha256", s["md5"]) {
		t.Fatal("Valid accepted a bad digest")
	}
}
