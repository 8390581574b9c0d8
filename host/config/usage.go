package config

import (
	"fmt"
	"strings"
)

// Usage returns the help text of a command, or of the binary for "".
func Usage(cmd Command) string {
	var b strings.Builder
	if cmd == "" || !known(cmd) {
		b.WriteString("Usage: pulpo COMMAND [flags]\n\nCommands:\n")
		for _, c := range commands {
			fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
		}
		b.WriteString("  help     show this text, or `pulpo help COMMAND` for a command's flags\n")
		b.WriteString("\nEvery setting can be given as a flag --name, an environment variable\n" +
			"PULPO_NAME or a key of the JSON file named by --config; flags win over the\n" +
			"environment, which wins over the file. Run `pulpo serve -h` for the list.\n")
		return b.String()
	}
	for _, c := range commands {
		if c.name == cmd {
			fmt.Fprintf(&b, "Usage: pulpo %s [flags]\n\n%s.\n", cmd, upperFirst(c.summary))
		}
	}
	if cmd == Version {
		return b.String()
	}
	b.WriteString("\nFlags (each also read from the environment variable shown, and from the\n" +
		"--config file under the flag's name with underscores):\n")
	line := func(flagArg, help, env, def string) {
		fmt.Fprintf(&b, "  --%s\n        %s\n", flagArg, help)
		switch {
		case env != "" && def != "":
			fmt.Fprintf(&b, "        (%s; default %s)\n", env, def)
		case env != "":
			fmt.Fprintf(&b, "        (%s)\n", env)
		}
	}
	line("config FILE", "JSON configuration file", EnvConfigFile, "")
	for _, s := range settings() {
		help := s.help
		if s.kind == kindList {
			help += fmt.Sprintf(" (%q-separated; repeatable)", s.sep)
		}
		line(s.flag()+" "+s.arg, help, s.env(), s.def)
	}
	if cmd == Serve {
		line("no-api", "do not serve the REST API", "", "")
		line("no-content", "do not serve the content app", "", "")
	}
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
