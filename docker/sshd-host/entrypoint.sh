#!/bin/sh
# Starts the example sshd host: host keys made here on first start (never baked
# into an image), the CA's keys, the first KRL before sshd is told about it,
# the sshd drop-in `jit-ssh-ca server-setup` writes, a refresh every minute,
# then sshd in the foreground.
set -eu
me=jit-ssh-host
ca=${JIT_SSH_CA_URL:?set JIT_SSH_CA_URL, e.g. http://jit-ssh-ca:8080}
ca=${ca%/}
dir=/etc/ssh/jit-ssh

ssh-keygen -A >/dev/null

if [ ! -s "$dir/ca.pub" ]; then
  # Bootstrap of this example only: the first CA key list is fetched from the CA
  # over the compose network. A real server gets it from the CA host itself
  # (`jit-ssh-ca server-setup` embeds `jit-ssh-ca ca pubkey`), so that trust is
  # never taken from the network; after that, jit-ssh-refresh accepts a new list
  # only when a key it already trusts signed it.
  tries=0
  until curl -fsS --max-time 10 -o "$dir/ca.pub.new" "$ca/v1/ca.pub"; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || { echo "$me: cannot fetch $ca/v1/ca.pub" >&2; exit 1; }
    sleep 2
  done
  chmod 0644 "$dir/ca.pub.new"
  mv "$dir/ca.pub.new" "$dir/ca.pub"
fi

# The KRL first: a missing RevokedKeys file makes sshd refuse every key login.
jit-ssh-refresh "$ca" "$dir"

cat >/etc/ssh/sshd_config.d/50-jit-ssh.conf <<CONF
TrustedUserCAKeys $dir/ca.pub
RevokedKeys $dir/revoked.krl
ExposeAuthInfo yes
ForceCommand /usr/local/libexec/jit-ssh-session-guard --warn 5m --krl $dir/revoked.krl --krl-interval 30s
# Certificates only on this example host.
AuthorizedKeysFile none
PasswordAuthentication no
KbdInteractiveAuthentication no
CONF

(while sleep 60; do jit-ssh-refresh "$ca" "$dir" || true; done) &

/usr/sbin/sshd -t
exec /usr/sbin/sshd -D -e
