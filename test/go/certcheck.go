// certcheck reads OpenSSH certificate lines ("TYPE BASE64 [COMMENT]", the
// -cert.pub format) from the files named as arguments, or from stdin when
// there are none, and checks each one with golang.org/x/crypto/ssh: it must
// parse (Go is strict about option order, duplicates and the inner string
// around option data), be an *ssh.Certificate, and pass CertChecker.CheckCert
// for -principal at the -now clock (which verifies the CA signature). It prints
// one JSON object per line per certificate, either the certificate's fields or
// an "error".
//
// Build offline against Debian's golang-golang-x-crypto-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o certcheck test/go/certcheck.go
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

type result struct {
	Source          string            `json:"source"`
	Line            int               `json:"line"`
	OK              bool              `json:"ok"`
	Error           string            `json:"error,omitempty"`
	Stage           string            `json:"stage,omitempty"`
	Type            string            `json:"type,omitempty"`
	CertType        uint32            `json:"certType,omitempty"`
	KeyType         string            `json:"keyType,omitempty"`
	Serial          string            `json:"serial,omitempty"`
	KeyID           string            `json:"keyId,omitempty"`
	Principals      []string          `json:"principals,omitempty"`
	ValidAfter      string            `json:"validAfter,omitempty"`
	ValidBefore     string            `json:"validBefore,omitempty"`
	CriticalOptions map[string]string `json:"criticalOptions,omitempty"`
	Extensions      map[string]string `json:"extensions,omitempty"`
	ExtensionNames  []string          `json:"extensionNames,omitempty"`
	SignatureFormat string            `json:"signatureFormat,omitempty"`
	SignatureKey    string            `json:"signatureKey,omitempty"`
	Comment         string            `json:"comment,omitempty"`
}

func main() {
	principal := flag.String("principal", "", "principal the certificate must be valid for")
	now := flag.Int64("now", -1, "Unix time used as the clock for the validity check (default: the real time)")
	kind := flag.String("kind", "user", "certificate kind to expect: user, or host (-principal is then a host name)")
	options := flag.String("critical-options", "force-command,verify-required", "comma-separated critical options the checker supports (source-address is always handled by x/crypto/ssh)")
	flag.Parse()

	checker := ssh.CertChecker{}
	if *options != "" {
		checker.SupportedCriticalOptions = strings.Split(*options, ",")
	}
	if *now >= 0 {
		at := time.Unix(*now, 0)
		checker.Clock = func() time.Time { return at }
	}

	out := json.NewEncoder(os.Stdout)
	failed := false
	emit := func(r result) {
		if !r.OK {
			failed = true
		}
		if err := out.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, "certcheck:", err)
			os.Exit(2)
		}
	}

	sources := flag.Args()
	if len(sources) == 0 {
		sources = []string{"-"}
	}
	for _, src := range sources {
		var in io.Reader
		if src == "-" {
			in = os.Stdin
		} else {
			f, err := os.Open(src)
			if err != nil {
				emit(result{Source: src, Stage: "open", Error: err.Error()})
				continue
			}
			defer f.Close()
			in = f
		}
		scanner := bufio.NewScanner(in)
		scanner.Buffer(make([]byte, 64*1024), 1024*1024)
		n := 0
		for scanner.Scan() {
			n++
			line := strings.TrimSpace(scanner.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			emit(check(src, n, []byte(line), *principal, *kind == "host", &checker))
		}
		if err := scanner.Err(); err != nil {
			emit(result{Source: src, Line: n, Stage: "read", Error: err.Error()})
		}
	}
	if failed {
		os.Exit(1)
	}
}

func check(src string, n int, line []byte, principal string, host bool, checker *ssh.CertChecker) result {
	r := result{Source: src, Line: n}
	pub, comment, _, rest, err := ssh.ParseAuthorizedKey(line)
	if err != nil {
		// ParseAuthorizedKey only says "ssh: no key found"; parse the blob
		// directly to report why (e.g. options not in lexical order).
		r.Stage, r.Error = "parse", err.Error()
		if fields := strings.Fields(string(line)); len(fields) >= 2 {
			if blob, derr := base64.StdEncoding.DecodeString(fields[1]); derr != nil {
				r.Error += ": " + derr.Error()
			} else if _, perr := ssh.ParsePublicKey(blob); perr != nil {
				r.Error += ": " + perr.Error()
			}
		}
		return r
	}
	if len(rest) > 0 {
		r.Stage, r.Error = "parse", "trailing data after the certificate line"
		return r
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		r.Stage, r.Error = "parse", fmt.Sprintf("not a certificate but a %s key", pub.Type())
		return r
	}
	r.Type = cert.Type()
	if declared := strings.Fields(string(line))[0]; declared != r.Type {
		r.Stage, r.Error = "parse", fmt.Sprintf("line says %s but the certificate is %s", declared, r.Type)
		return r
	}
	r.CertType = cert.CertType
	r.KeyType = cert.Key.Type()
	r.Serial = strconv.FormatUint(cert.Serial, 10)
	r.KeyID = cert.KeyId
	r.Principals = cert.ValidPrincipals
	r.ValidAfter = strconv.FormatUint(cert.ValidAfter, 10)
	r.ValidBefore = strconv.FormatUint(cert.ValidBefore, 10)
	r.CriticalOptions = cert.CriticalOptions
	r.Extensions = cert.Extensions
	for name := range cert.Extensions {
		r.ExtensionNames = append(r.ExtensionNames, name)
	}
	sort.Strings(r.ExtensionNames)
	r.Comment = comment
	if cert.Signature != nil {
		r.SignatureFormat = cert.Signature.Format
	}
	if cert.SignatureKey != nil {
		r.SignatureKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert.SignatureKey)))
	}
	if host {
		if cert.CertType != ssh.HostCert {
			r.Stage, r.Error = "check", fmt.Sprintf("certificate type %d is not a host certificate", cert.CertType)
			return r
		}
	} else if cert.CertType != ssh.UserCert {
		r.Stage, r.Error = "check", fmt.Sprintf("certificate type %d is not a user certificate", cert.CertType)
		return r
	}
	if err := checker.CheckCert(principal, cert); err != nil {
		r.Stage, r.Error = "check", err.Error()
		return r
	}
	r.OK = true
	return r
}
