# shellcheck shell=bash
# Exit nodes and domain routes: sourced by ops/netns-e2e after its access-control part (the office-lan routes are disabled
# by then), with the script's namespaces, variables and helpers (api, json, wait_until, fail, step, start_agent, seen, …).
#
#   domain route  dnsmasq in the LAN namespace answers lanhost.e2e.test with the LAN host's address; the client's system
#                 resolver points at it (/etc/netns/<client>/resolv.conf, over a DNS-only link); the agent installs a
#                 host route to that address through R1 and the LAN host answers a ping by it (masqueraded by R1). A
#                 wildcard domain is refused by the API (422, field domains).
#   exit node     0.0.0.0/0 through R1 (and another through R2) is offered, not installed; `routeplane agent routes
#                 select exit-r1` installs it (with unreachable ::/0 beside it): a test address on the LAN host that no
#                 other route covers answers through R1 while the controller stays off the tunnel (ip route get);
#                 selecting exit-r2 replaces it (at most one); the choice survives an agent restart; deselect removes it.

ED_NAME=lanhost.e2e.test
ED_DNS_C=192.0.2.1 ED_DNS_SERVER=192.0.2.2   # a /30 between the client and the LAN namespace, for DNS only
ED_TEST=203.0.113.7                           # on the LAN host; routed by nothing but an exit node
ED_NETNS_DIR="/etc/netns/$NS_C"
ED_STATE="$WORK/state-client"
routes_cli() { "$RP" agent routes "$@" --state-dir "$ED_STATE"; }

# /etc/netns/<ns> is not removed by `ip netns del`: ours goes on exit, those of dead runs now.
for d in /etc/netns/rpe*-client; do
  [ -d "$d" ] || continue
  p="${d#/etc/netns/rpe}"; p="${p%%-*}"
  owner_alive "$p" || rm -rf "$d"
done
trap 'rc=$?; rm -rf "$ED_NETNS_DIR"; (exit $rc); cleanup' EXIT

# ---------------------------------------------------------------- domain route
step "domain route: dnsmasq in the LAN namespace answers $ED_NAME with $LAN_HOST"
ED_DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[ -x "$ED_DNSMASQ" ] || fail "dnsmasq not installed (ops/setup installs Debian's dnsmasq-base)"
ip link add dns0 netns "$NS_C" type veth peer name dns0 netns "$NS_LAN"
ip -n "$NS_C" addr add "$ED_DNS_C/30" dev dns0
ip -n "$NS_C" link set dns0 up
ip -n "$NS_LAN" addr add "$ED_DNS_SERVER/30" dev dns0
ip -n "$NS_LAN" link set dns0 up
ip netns exec "$NS_LAN" "$ED_DNSMASQ" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
  --listen-address="$ED_DNS_SERVER" --except-interface=lo --host-record="$ED_NAME,$LAN_HOST" --local-ttl=60 --pid-file= \
  --user=root --log-queries --log-facility="$WORK/dnsmasq.log" </dev/null >/dev/null 2>&1 &
track $! dnsmasq
mkdir -p "$ED_NETNS_DIR"
printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$ED_DNS_SERVER" >"$ED_NETNS_DIR/resolv.conf"
wait_until 10 "dnsmasq answering $ED_NAME in the client namespace" \
  bash -c "ip netns exec $NS_C getent ahostsv4 $ED_NAME | grep -q '^$LAN_HOST '"
nsx "$NS_C" ping -c 1 -W 1 "$LAN_HOST" >/dev/null 2>&1 && fail "the LAN host is reachable from the client before the domain route"
# `ip netns exec` gives a process the namespace's resolv.conf when it starts: restart the client's agent (same state folder).
stop_pid "${AGENT_PID[client]}"
start_agent "$NS_C" client "$MESH_C" "$KEY_CLIENTS"
echo "  client's resolver: $ED_DNS_SERVER (dnsmasq in the LAN namespace, TTL 60 s); client agent restarted to use it"

ED_WILD=$(curl -s -m 10 -o "$WORK/wild.json" -w '%{http_code}' -X POST "$API/api/routes" -H "$AUTH" \
  -d "{\"network_id\":\"wild\",\"domains\":[\"*.e2e.test\"],\"peer\":\"$R1_ID\",\"metric\":100,\"masquerade\":true,\"groups\":[\"$GROUP\"],\"enabled\":true}")
[ "$ED_WILD" = 422 ] && grep -q '"field":"domains"' "$WORK/wild.json" || fail "a wildcard domain route answered $ED_WILD: $(cat "$WORK/wild.json")"
echo "  *.e2e.test refused: 422 $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["message"])' "$WORK/wild.json")"

ED_T0=$(now)
ED_DNS_ROUTE=$(api POST /api/routes "{\"network_id\":\"lan-host-by-name\",\"domains\":[\"$ED_NAME\"],\"peer\":\"$R1_ID\",\"metric\":100,\"masquerade\":true,\"groups\":[\"$GROUP\"],\"enabled\":true,\"description\":\"netns e2e: domain route\"}" | json '["id"]')
ed_host_route() { ip -n "$NS_C" route show table "$RP_TABLE" "$LAN_HOST/32" proto 239 | grep -q "via $MESH_R1 "; }
wait_until 30 "client host route $LAN_HOST/32 via R1 ($MESH_R1), resolved from $ED_NAME" ed_host_route
ED_T1=$(now)
wait_until 15 "R1 masquerading the mesh for the domain route" bash -c "ip netns exec $NS_R1 nft list table inet routeplane | grep -q 'daddr 0.0.0.0/0 masquerade'"
ED_A=$(seen r1)
wait_until 10 "the LAN host answering the client by its name's address" nsx "$NS_C" ping -c 1 -W 1 "$LAN_HOST"
ED_B=$(seen r1)
[ "$ED_B" -gt "$ED_A" ] || fail "the domain route's traffic did not go through R1"
echo "  client's kernel: $(ip -n "$NS_C" route show table "$RP_TABLE" "$LAN_HOST/32" proto 239)   ($(elapsed "$ED_T0" "$ED_T1") s after the POST)"
echo "  dnsmasq: $(grep -c "query\[A\] $ED_NAME" "$WORK/dnsmasq.log" || true) A queries for $ED_NAME; LAN host saw R1's address: $ED_A → $ED_B"
routes_cli list | sed 's/^/  | /'

# ---------------------------------------------------------------- exit nodes
step "exit nodes: 0.0.0.0/0 through R1 and through R2 are offered, not installed"
ip -n "$NS_LAN" addr add "$ED_TEST/32" dev lo
for ns in "$NS_R1" "$NS_R2"; do ip -n "$ns" route add default via "$LAN_HOST"; done   # the exit peers' "internet"
exit_body() { echo "{\"network_id\":\"$1\",\"network\":\"0.0.0.0/0\",\"peer\":\"$2\",\"metric\":100,\"masquerade\":true,\"groups\":[\"$GROUP\"],\"enabled\":true,\"description\":\"netns e2e: exit node\"}"; }
ED_EXIT1=$(api POST /api/routes "$(exit_body exit-r1 "$R1_ID")" | json '["id"]')
ED_EXIT2=$(api POST /api/routes "$(exit_body exit-r2 "$R2_ID")" | json '["id"]')
wait_until 30 "the client offering exit-r1 and exit-r2" bash -c "grep -q '\"exit-r1\"' $ED_STATE/routes.json && grep -q '\"exit-r2\"' $ED_STATE/routes.json"
wait_until 15 "R2 masquerading for its exit node" bash -c "ip netns exec $NS_R2 nft list table inet routeplane | grep -q 'daddr 0.0.0.0/0 masquerade'"
sleep 1
client_default() { ip -n "$NS_C" route show table "$RP_TABLE" default proto 239; }
[ -z "$(client_default)" ] || fail "an exit node was installed without a select: $(client_default)"
nsx "$NS_C" ping -c 1 -W 1 "$ED_TEST" >/dev/null 2>&1 && fail "$ED_TEST answered before any exit node was selected"
routes_cli list | sed 's/^/  | /'

step "routeplane agent routes select exit-r1"
ED_T2=$(now)
routes_cli select --append exit-r1 | sed 's/^/  /'
wait_until 15 "client default route via R1 ($MESH_R1)" bash -c "ip -n $NS_C route show table $RP_TABLE default proto 239 | grep -q 'via $MESH_R1 '"
ED_T3=$(now)
ED_V6=$(ip -n "$NS_C" -6 route show table "$RP_TABLE" default proto 239)
[[ "$ED_V6" == unreachable* ]] || fail "no unreachable ::/0 beside the IPv4 exit node (got '$ED_V6')"
ED_C=$(seen r1)
wait_until 10 "$ED_TEST answering through the exit node" nsx "$NS_C" ping -c 1 -W 1 "$ED_TEST"
ED_D=$(seen r1)
[ "$ED_D" -gt "$ED_C" ] || fail "traffic to $ED_TEST did not leave through R1"
ED_MGMT_ROUTE=$(nsx "$NS_C" ip route get "$MGMT_IP" | head -n 1 | xargs)
grep -q "dev mgmt0" <<<"$ED_MGMT_ROUTE" || fail "the controller's address would go through the tunnel: $ED_MGMT_ROUTE"
echo "  client's kernel: $(client_default); IPv6: $ED_V6   ($(elapsed "$ED_T2" "$ED_T3") s after the select)"
echo "  ip route get $ED_TEST → $(nsx "$NS_C" ip route get "$ED_TEST" | head -n 1 | xargs); LAN host saw R1's address: $ED_C → $ED_D"
echo "  ip route get $MGMT_IP (controller, NATS) → $ED_MGMT_ROUTE"

step "routeplane agent routes select exit-r2: replaces exit-r1 (at most one exit node)"
routes_cli select --append exit-r2 | sed 's/^/  /'
wait_until 15 "client default route via R2 ($MESH_R2)" bash -c "ip -n $NS_C route show table $RP_TABLE default proto 239 | grep -q 'via $MESH_R2 '"
[ "$(client_default | wc -l)" -eq 1 ] || fail "more than one default route: $(client_default)"
ED_E=$(seen r2)
wait_until 10 "$ED_TEST answering through R2" nsx "$NS_C" ping -c 1 -W 1 "$ED_TEST"
[ "$(seen r2)" -gt "$ED_E" ] || fail "traffic to $ED_TEST did not leave through R2"
echo "  client's kernel: $(client_default)"

step "the choice survives an agent restart"
stop_pid "${AGENT_PID[client]}"
[ -z "$(client_default)" ] || fail "the exit node's route stayed after the agent stopped"
start_agent "$NS_C" client "$MESH_C" "$KEY_CLIENTS"
wait_until 30 "client default route via R2 again after the restart" bash -c "ip -n $NS_C route show table $RP_TABLE default proto 239 | grep -q 'via $MESH_R2 '"
echo "  restarted: $(client_default)"

step "routeplane agent routes deselect exit-r2: the default route goes"
routes_cli deselect exit-r2 | sed 's/^/  /'
wait_until 15 "client default route removed" bash -c "[ -z \"\$(ip -n $NS_C route show table $RP_TABLE default proto 239)\" ] && [ -z \"\$(ip -n $NS_C -6 route show table $RP_TABLE default proto 239)\" ]"
nsx "$NS_C" ping -c 1 -W 1 "$ED_TEST" >/dev/null 2>&1 && fail "$ED_TEST still answers after the deselect"
ed_host_route || fail "the domain route went with the exit node"
routes_cli list | sed 's/^/  | /'

for id in "$ED_EXIT1" "$ED_EXIT2" "$ED_DNS_ROUTE"; do api DELETE "/api/routes/$id" >/dev/null; done
wait_until 15 "the domain route's host route removed" bash -c "[ -z \"\$(ip -n $NS_C route show table $RP_TABLE $LAN_HOST/32 proto 239)\" ]"
echo "  exit nodes and domain route deleted: nothing of ours left in the client's table"
ED_SUMMARY="  domain route ($ED_NAME)               host route $LAN_HOST/32 via R1 $(elapsed "$ED_T0" "$ED_T1") s after the POST; LAN host answered by it; *.e2e.test refused (422)
  exit node                             offered, not installed; select → default via R1 $(elapsed "$ED_T2" "$ED_T3") s later (unreachable ::/0 beside it), controller off the tunnel; exit-r2 replaced it; kept over a restart; deselect removed it"
step "exit nodes and domain routes: summary"
echo "$ED_SUMMARY"
