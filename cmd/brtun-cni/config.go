package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// netConf is the plugin's network configuration, e.g.
//
//	{"cniVersion":"1.0.0","name":"blue","type":"brtun-cni","server":"http://198.51.100.254:8080",
//	 "network":"blue","host":"h1","token_file":"/etc/brtun/token"}
//
// plus the standard members (ipam, dns, prevResult, and for GC
// cni.dev/valid-attachments) that types.PluginConf holds.
type netConf struct {
	types.PluginConf
	// Server is brtun's REST API, http(s)://HOST:PORT.
	Server string `json:"server"`
	// Network is the brtun network the container joins.
	Network string `json:"network"`
	// Host is the brtun name of the host this plugin runs on: brtun binds
	// the port's interface on that host's br-int.
	Host string `json:"host"`
	// TokenFile holds brtun's API token; without it no token is sent.
	TokenFile string `json:"token_file,omitempty"`
}

// parseConf decodes and checks a network configuration, and parses its
// prevResult when there is one.
func parseConf(data []byte) (*netConf, error) {
	conf := &netConf{}
	if err := json.Unmarshal(data, conf); err != nil {
		return nil, fmt.Errorf("brtun-cni: cannot decode the network configuration: %w", err)
	}
	u, err := url.Parse(conf.Server)
	if conf.Server == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf(`brtun-cni: "server" must be brtun's API address, http(s)://HOST:PORT, got %q`, conf.Server)
	}
	conf.Server = strings.TrimSuffix(conf.Server, "/")
	if conf.Network == "" {
		return nil, fmt.Errorf(`brtun-cni: "network" (the brtun network to join) is missing`)
	}
	if conf.Host == "" {
		return nil, fmt.Errorf(`brtun-cni: "host" (this host's name in brtun) is missing`)
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return nil, fmt.Errorf("brtun-cni: %w", err)
	}
	return conf, nil
}

// token reads the API token from TokenFile ("" without one).
func (c *netConf) token() (string, error) {
	if c.TokenFile == "" {
		return "", nil
	}
	data, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("brtun-cni: token_file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("brtun-cni: token_file %s is empty", c.TokenFile)
	}
	return tok, nil
}

// cniTag marks the ports brtun-cni made, so GC touches no other port.
const cniTag = "brtun-cni"

// attachment is one container interface on one network: the names of its
// brtun port and of the veth end in the host's namespace follow from the
// container id and the interface name alone, so DEL and GC find them
// without any state of the plugin's own.
type attachment struct {
	ContainerID string
	IfName      string // the interface inside the container (CNI_IFNAME)
	Port        string // brtun port name: cni-<24 hex digits>
	HostIf      string // veth end in the host's namespace: cni<12 hex digits>
}

func newAttachment(containerID, ifName string) attachment {
	sum := sha256.Sum256([]byte(containerID + "\x00" + ifName))
	h := hex.EncodeToString(sum[:])
	return attachment{ContainerID: containerID, IfName: ifName, Port: "cni-" + h[:24], HostIf: "cni" + h[:12]}
}
