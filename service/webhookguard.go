package service

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// blockedWebhookNets are the addresses a webhook may not reach unless Config.WebhookAllow
// names them: link-local (where clouds serve instance metadata and credentials:
// 169.254.169.254, fe80::/10) and fd00::/8 (AWS's IPv6 metadata, fd00:ec2::254). IPv4
// addresses written as IPv4-mapped IPv6 (::ffff:169.254.169.254) or through NAT64
// (64:ff9b::/96) are checked as the IPv4 address they carry. Loopback and private
// addresses are allowed: the operator who turns --batch-webhooks on trusts its clients
// with the server's network.
var blockedWebhookNets = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00::/8"),
}

var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// errWebhookAddress is a webhook address the server refuses to reach.
var errWebhookAddress = errors.New("webhook address refused: link-local and metadata addresses are not reached unless --webhook-allow names them")

// webhookAddrAllowed reports whether a webhook may reach addr.
func webhookAddrAllowed(addr netip.Addr, allow []netip.Prefix) bool {
	addr = addr.WithZone("")
	cands := []netip.Addr{addr, addr.Unmap()}
	if nat64.Contains(addr) {
		b := addr.As16()
		cands = append(cands, netip.AddrFrom4([4]byte(b[12:])))
	}
	for _, a := range cands {
		for _, p := range allow {
			if p.Contains(a) {
				return true
			}
		}
	}
	for _, a := range cands {
		for _, p := range blockedWebhookNets {
			if p.Contains(a) {
				return false
			}
		}
	}
	return true
}

// checkWebhookURL checks that u is an absolute http or https URL whose host, when it is
// an IP address, the server may reach. Its errors never quote the URL, which may hold
// credentials.
func checkWebhookURL(u string, allow []netip.Prefix) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return errors.New("webhook URL is not an absolute http or https URL")
	}
	if addr, err := netip.ParseAddr(p.Hostname()); err == nil && !webhookAddrAllowed(addr, allow) {
		return errWebhookAddress
	}
	return nil
}

// webhookClient is the default client of the webhooks: it follows no redirect, uses no
// proxy, and checks every address it connects to, after name resolution, so that a name
// that resolves (or later re-resolves) to a refused address is refused too.
func webhookClient(allow []netip.Prefix) *http.Client {
	d := &net.Dialer{Timeout: webhookTimeout, Control: webhookDialControl(allow)}
	return &http.Client{
		Timeout: webhookTimeout,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConns:        16,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: noRedirect,
	}
}

// webhookDialControl checks the address a webhook connection is about to reach.
func webhookDialControl(allow []netip.Prefix) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("webhook dial: %w", err)
		}
		addr, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("webhook dial: %w", err)
		}
		if !webhookAddrAllowed(addr, allow) {
			return errWebhookAddress
		}
		return nil
	}
}

// noRedirect makes a client answer a redirect as it is: a webhook is delivered to the
// URL it names or not at all.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// redactURL is u as it may be logged: no user info, no query (which often carries a
// token) and no fragment.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparseable URL)"
	}
	q := p.RawQuery != ""
	p.User, p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment = nil, "", false, "", ""
	if q {
		return p.String() + "?REDACTED"
	}
	return p.String()
}

// redactError strips the URL an HTTP client puts in its errors.
func redactError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redactURL(ue.URL), ue.Err)
	}
	return err
}
