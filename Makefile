# Build and install Stowage:
#
#   make                                  # cargo build --release
#   sudo make install                     # into /usr/local (runs no cargo once built)
#   make install PREFIX=/opt/stowage DESTDIR=/tmp/pkgroot   # for a package
#   make uninstall [PREFIX=...] [DESTDIR=...]
#
# Lays out:
#   $(PREFIX)/bin/stowage
#   $(PREFIX)/lib/stowage/plugins/libstowage_plugin_<name>.so   (every plugin)
#   $(PREFIX)/share/man/man1/stowage.1, stowage-<command>.1, ...
#   $(PREFIX)/share/bash-completion/completions/stowage
#   $(PREFIX)/share/zsh/site-functions/_stowage
#   $(PREFIX)/share/fish/vendor_completions.d/stowage.fish
#   $(SYSCONFDIR)/stowage/plugins.toml   (the repository's, unless one is there)
# An installed stowage finds its plugins in ../lib/stowage/plugins from its
# own directory, whatever PREFIX is (docs/PLUGINS.md, "Loading").
# scripts/test-install checks all of it from a temporary DESTDIR.

PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR ?=
CARGO ?= cargo
CARGO_TARGET_DIR ?= target

# The plugin crates under plugins/ that build a library (support is not one).
PLUGINS := fs s3cmd aws gsutil objstore
DLL_SUFFIX := $(if $(filter Darwin,$(shell uname -s)),dylib,so)

release := $(CARGO_TARGET_DIR)/release
binary := $(release)/stowage
plugin_libraries := $(PLUGINS:%=$(release)/libstowage_plugin_%.$(DLL_SUFFIX))
sources := Cargo.toml Cargo.lock \
	$(shell find cli core plugins -name '*.rs' -o -name Cargo.toml)

root := $(DESTDIR)$(PREFIX)
bindir := $(root)/bin
plugindir := $(root)/lib/stowage/plugins
man1dir := $(root)/share/man/man1
bash_completion := $(root)/share/bash-completion/completions/stowage
zsh_completion := $(root)/share/zsh/site-functions/_stowage
fish_completion := $(root)/share/fish/vendor_completions.d/stowage.fish
plugins_toml := $(DESTDIR)$(SYSCONFDIR)/stowage/plugins.toml

.PHONY: all build install uninstall

all: build

build: $(binary)

# One cargo run builds the binary and every plugin library (the workspace's
# default members, as `cargo build --release` and scripts/demo build them).
# The touch keeps an up-to-date build from running cargo again (under sudo).
$(binary): $(sources)
	$(CARGO) build --release
	@touch $(binary)

$(plugin_libraries): $(binary)

install: $(binary) $(plugin_libraries)
	install -d $(bindir) $(plugindir) $(man1dir) $(dir $(bash_completion)) \
		$(dir $(zsh_completion)) $(dir $(fish_completion)) $(dir $(plugins_toml))
	install -m 755 $(binary) $(bindir)/stowage
	install -m 644 $(plugin_libraries) $(plugindir)/
	$(binary) manpages $(man1dir) >/dev/null
	$(binary) completions bash >$(bash_completion)
	$(binary) completions zsh >$(zsh_completion)
	$(binary) completions fish >$(fish_completion)
	@if [ -e $(plugins_toml) ]; then \
		echo "kept $(plugins_toml) (the repository's is plugins.toml)"; \
	else \
		install -m 644 plugins.toml $(plugins_toml); \
	fi

# Leaves $(SYSCONFDIR)/stowage/plugins.toml: it may hold the operator's edits.
uninstall:
	rm -f $(bindir)/stowage $(man1dir)/stowage.1 $(man1dir)/stowage-*.1 \
		$(bash_completion) $(zsh_completion) $(fish_completion) \
		$(PLUGINS:%=$(plugindir)/libstowage_plugin_%.$(DLL_SUFFIX))
	rmdir $(plugindir) $(root)/lib/stowage 2>/dev/null || true
