package service

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestWebhookDialRefusesMetadataAddresses: the default client checks the address it
// connects to, after name resolution, so a name resolving to a metadata address is
// refused as its literal would be.
func TestWebhookDialRefusesMetadataAddresses(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("169.254.10.0/24")}
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"169.254.169.254", false},
		{"::ffff:169.254.169.254", false},
		{"64:ff9b::a9fe:a9fe", false},
		{"fd00:ec2::254", false},
		{"fe80::1%eth0", false},
		{"169.254.10.7", true}, // allowed
		{"::ffff:169.254.10.7", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"10.1.2.3", true},
		{"93.184.216.34", true},
	} {
		if got := webhookAddrAllowed(netip.MustParseAddr(tc.addr), allow); got != tc.ok {
			t.Errorf("%s: allowed %v, want %v", tc.addr, got, tc.ok)
		}
	}
	ctl := webhookDialControl(allow)
	if err := ctl("tcp", "[::ffff:169.254.169.254]:80", nil); !errors.Is(err, errWebhookAddress) {
		t.Errorf("dial a mapped metadata address: %v, want refused", err)
	}
	if err := ctl("tcp", "127.0.0.1:80", nil); err != nil {
		t.Errorf("dial loopback: %v", err)
	}
}

func FuzzWebhookURL(f *testing.F) {
	for _, s := range []string{"http://169.254.169.254/", "http://[::ffff:a9fe:a9fe]/", "https://u:p@example.com/h?t=1", "http://[fe80::1%25eth0]/", "ftp://x", "http://2852039166/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		err := checkWebhookURL(u, nil)
		if err != nil && len(u) > 8 && strings.Contains(err.Error(), u) {
			t.Errorf("the error quotes the URL: %v", err)
		}
		if r := redactURL(u); strings.Contains(r, "@") && !strings.Contains(u, "@") {
			t.Errorf("redacting %q added user info: %q", u, r)
		}
	})
}
