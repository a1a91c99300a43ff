package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/internal/cli"
	"github.com/linesight/linesight/sync/rollout"
	"github.com/linesight/linesight/sync/wire"
)

// keysCmd: linesight-fleet keys gen --out DIR.
func keysCmd(ctx context.Context, stdio cli.Stdio, args []string) error {
	if len(args) == 0 || args[0] != "gen" {
		return cli.Usagef("usage: linesight-fleet keys gen --out DIR")
	}
	fs := cli.NewFlags("linesight-fleet keys gen", stdio)
	out := fs.String("out", "", "directory for fleet.key (private, mode 0600) and fleet.pub")
	if err := cli.ParseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return cli.Usagef("keys gen: --out DIR is required")
	}
	priv, pub, id, err := rollout.GenerateKey(*out)
	if err != nil {
		if errors.Is(err, rollout.ErrKeyExists) {
			return &cli.UsageError{Err: err}
		}
		return err
	}
	fmt.Fprintf(stdio.Out, "key %s\n  private: %s (keep it secret; push --key)\n  public:  %s (copy to every device's trusted keys)\n", id, priv, pub)
	return nil
}

// pushCmd signs a model package and offers it to a device or a group,
// then answers chunk requests until the device reports the outcome (a
// device target) or --wait ends (a group).
func pushCmd(ctx context.Context, stdio cli.Stdio, args []string) error {
	fs := cli.NewFlags("linesight-fleet push", stdio)
	model := fs.String("model", "", "model package directory (manifest.json, model.onnx)")
	to := fs.String("to", "", "DEVICE or group:NAME")
	site := fs.String("site", "default", "site the target belongs to")
	stage := fs.String("stage", rollout.StageShadow, "shadow, canary or all")
	key := fs.String("key", filepath.Join("keys", rollout.PrivateKeyFile), "private key (keys gen)")
	url := fs.String("url", "", "HTTP(S) URL where the package's files lie (devices fetch URL/FILE instead of MQTT chunks)")
	brokerURL := fs.String("broker", "tcp://127.0.0.1:1883", "MQTT broker")
	clientID := fs.String("client-id", "linesight-fleet-push", "MQTT client ID")
	rollback := fs.Bool("rollback", false, "allow a version older than the devices' active one (a signed rollback)")
	canary := fs.Float64("canary", 0, "share of devices that promote at once in the canary stage (default 0.1)")
	c := rollout.DefaultCriteria()
	fs.IntVar(&c.MinFrames, "min-frames", c.MinFrames, "frames compared in shadow (and on probation) before deciding")
	fs.Float64Var(&c.MinAgreement, "min-agreement", c.MinAgreement, "share of shadow frames with the active model's label needed to promote")
	fs.Float64Var(&c.MaxLatencyRatio, "max-latency-ratio", c.MaxLatencyRatio, "largest candidate/active latency ratio")
	fs.Float64Var(&c.MaxErrorRate, "max-error-rate", c.MaxErrorRate, "largest share of frames the candidate may fail")
	manual := fs.Bool("manual", false, "promote only by command, never automatically")
	chunk := fs.Int("chunk-size", rollout.DefaultChunkSize, "transfer chunk size in bytes")
	wait := fs.Duration("wait", 10*time.Minute, "how long to serve chunk requests")
	store := fs.String("store", filepath.Join("fleet-data", "releases"), "keep the signed release and a copy of the package here, where linesight-fleet serve answers its chunk requests (empty: don't)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	c.Auto = !*manual
	if *model == "" || *to == "" {
		return cli.Usagef("push: --model DIR and --to DEVICE|group:NAME are required")
	}
	if *stage != rollout.StageShadow && *stage != rollout.StageCanary && *stage != rollout.StageAll {
		return cli.Usagef("push: --stage %q: want %s", *stage, strings.Join(rollout.Stages, ", "))
	}
	tg, err := rollout.ParseTarget(*site, *to)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	priv, err := rollout.LoadPrivateKey(*key)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	rel, err := rollout.BuildRelease(*model, rollout.ReleaseOptions{Target: tg.String(), Stage: *stage, Canary: *canary,
		Rollback: *rollback, Criteria: c, ChunkSize: *chunk})
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	off, err := rollout.Sign(rel, priv)
	if err != nil {
		return err
	}
	off.URL = *url
	if _, _, err := wire.DecodeModelOffer(mustEncodeOffer(off)); err != nil {
		return &cli.UsageError{Err: fmt.Errorf("push: %w (too many chunks? raise --chunk-size)", err)}
	}
	if *store != "" {
		rs, err := rollout.OpenReleases(*store)
		if err == nil {
			err = rs.Put(off, rel, *model)
		}
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(*brokerURL).SetClientID(*clientID).SetOrderMatters(false).
		SetPassword(os.Getenv("LINESIGHT_FLEET_MQTT_PASSWORD")))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("push: connect to %s: %v", *brokerURL, tok.Error())
	}
	defer cl.Disconnect(250)
	pub, err := rollout.NewPublisher(cl, rollout.PublisherOptions{Site: *site})
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	defer pub.Close()
	outcome := make(chan wire.ModelState, 16)
	if tg.Device != "" {
		tok := cl.Subscribe(wire.Topic(tg.Site, tg.Device, wire.KindModelState), 1, func(_ paho.Client, m paho.Message) {
			if _, s, err := wire.DecodeModelState(m.Payload()); err == nil && s.Offer == rel.Offer {
				select {
				case outcome <- s:
				default:
				}
			}
		})
		tok.WaitTimeout(10 * time.Second)
	}
	if err := pub.Offer(tg, off, rel, rollout.NewSource(*model, rel)); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "offered %s %s to %s (stage %s, offer %s, %d bytes in %d chunks, key %s)\n",
		rel.Name, rel.Version, tg.String(), rel.Stage, rel.Offer, rel.Size(), len(rel.Chunks), off.KeyID)
	deadline := time.After(*wait)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			fmt.Fprintf(stdio.Out, "served %d chunks; the offer stays retained for devices that connect later\n", pub.Served(rel.Offer))
			return nil
		case s := <-outcome:
			fmt.Fprintf(stdio.Out, "%s: %s %s%s\n", tg.Device, s.State, s.Model.Version, errSuffix(s))
			switch s.State {
			case wire.ModelRejected:
				return fmt.Errorf("push: %s refused %s: %s", tg.Device, rel.Version, s.Error)
			case wire.ModelShadow, wire.ModelProbation, wire.ModelActive:
				return nil
			}
		}
	}
}

func errSuffix(s wire.ModelState) string {
	if s.Error == "" {
		return ""
	}
	return " (" + s.Code + ": " + s.Error + ")"
}

func mustEncodeOffer(o *wire.ModelOffer) []byte {
	b, err := wire.Encode(wire.Envelope{Type: wire.TypeModelOffer, Time: time.Now().UTC()}, o)
	if err != nil {
		return nil
	}
	return b
}
