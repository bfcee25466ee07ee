// Command mkfloppy writes a floppy image holding a luoyun.ini, laid out as
// the LuoYun compute node writes it or as an ordinary FAT12 or FAT16 image,
// for trying the agent by hand or under qemu (-fda out.img).
//
//	go run ./scripts/mkfloppy -layout node|fat12|fat16 -o out.img [-name luoyun.ini] input.ini
//
// An input of "-" reads standard input.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"osmanager/agent/floppy"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mkfloppy:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stderr io.Writer) error {
	fl := flag.NewFlagSet("mkfloppy", flag.ContinueOnError)
	fl.SetOutput(stderr)
	layout := fl.String("layout", "node", "image `kind`: node (the compute node's hand-laid 1 MiB image), fat12 (a 1.44 MB floppy) or fat16")
	out := fl.String("o", "", "output image `file` (required)")
	name := fl.String("name", floppy.FileName, "file `name` on the image; the node layout has only "+floppy.FileName)
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: mkfloppy -layout node|fat12|fat16 -o out.img [-name luoyun.ini] input.ini|-")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fl.NArg() != 1 || *out == "" {
		fl.Usage()
		return errors.New("need -o and one input file")
	}

	in := fl.Arg(0)
	var body []byte
	var err error
	if in == "-" {
		body, err = io.ReadAll(stdin)
	} else {
		body, err = os.ReadFile(in)
	}
	if err != nil {
		return fmt.Errorf("read input: %w", err)
	}

	var img []byte
	switch *layout {
	case "node":
		if *name != floppy.FileName {
			return fmt.Errorf("-name %s: the node layout holds only %s", *name, floppy.FileName)
		}
		img = floppy.NodeImage(body)
	case "fat12", "fat16":
		if img, err = floppy.FATImage(*layout, *name, body); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-layout %s: want node, fat12 or fat16", *layout)
	}
	if err := os.WriteFile(*out, img, 0o644); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	return nil
}
