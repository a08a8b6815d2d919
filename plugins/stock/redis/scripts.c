/* The Lua scripts of the redis stock plugin; the key layout and reply shape are in
 * scripts.h. Redis runs each script atomically, so every guarantee written above a
 * script holds however many daemons and connections run it at the same time.
 * Numbers travel as decimal strings in ARGV; ids are compared as strings. */
#include "scripts.h"

#include <inttypes.h>
#include <stdio.h>

/*
 * publish — KEYS: meta, stock. ARGV: activity_id, limit, price_cents, starts_at_ms,
 * ends_at_ms, initial.
 * Guarantees: the first call creates meta (state open, initial) and sets stock to
 * initial; every later call only rewrites the sale fields (activity, limit, price,
 * window) and never touches stock, initial or state, so publishing twice (a retry,
 * a restarted scheduler) never resets a stock that is already selling nor reopens a
 * paused or closed item. Replies { 0, initial, remaining, 0, state }.
 */
static const char publish_lua[] =
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "  redis.call('HSET', KEYS[1], 'activity_id', ARGV[1], 'limit', ARGV[2], 'price_cents', ARGV[3],\n"
    "             'starts_at_ms', ARGV[4], 'ends_at_ms', ARGV[5], 'state', 'open', 'initial', ARGV[6])\n"
    "  redis.call('SET', KEYS[2], ARGV[6])\n"
    "else\n"
    "  redis.call('HSET', KEYS[1], 'activity_id', ARGV[1], 'limit', ARGV[2], 'price_cents', ARGV[3],\n"
    "             'starts_at_ms', ARGV[4], 'ends_at_ms', ARGV[5])\n"
    "end\n"
    "local m = redis.call('HMGET', KEYS[1], 'initial', 'state')\n"
    "return {0, tonumber(m[1] or '0'), tonumber(redis.call('GET', KEYS[2]) or '0'), 0, S[m[2] or ''] or -1}\n";

/*
 * query — KEYS: meta, stock. No ARGV. Read only.
 * Replies { 0, initial, remaining, 0, state }, or { 1, 0, 0, 0, -1 } when the item
 * is not published.
 */
static const char query_lua[] =
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "local m = redis.call('HMGET', KEYS[1], 'initial', 'state')\n"
    "if not m[1] then return {1, 0, 0, 0, -1} end\n"
    "return {0, tonumber(m[1]), tonumber(redis.call('GET', KEYS[2]) or '0'), 0, S[m[2] or ''] or -1}\n";

/*
 * set_state — KEYS: meta, stock. ARGV: open|paused|closed.
 * Guarantees: only the state field of a published item changes (the kill switch
 * touches nothing else); closed is final: a closed item is never reopened (code 2,
 * nothing changes). Replies { 0, initial, remaining, 0, new state }, { 1, … } when
 * the item is not published.
 */
static const char set_state_lua[] =
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "local m = redis.call('HMGET', KEYS[1], 'initial', 'state')\n"
    "if not m[1] then return {1, 0, 0, 0, -1} end\n"
    "local left = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "if m[2] == 'closed' and ARGV[1] ~= 'closed' then return {2, tonumber(m[1]), left, 0, 2} end\n"
    "redis.call('HSET', KEYS[1], 'state', ARGV[1])\n"
    "return {0, tonumber(m[1]), left, 0, S[ARGV[1]]}\n";

/*
 * add_units — KEYS: meta, stock. ARGV: units (> 0, checked by the caller).
 * Guarantees: stock and initial of a published item both grow by exactly `units`
 * (INCRBY on the live values, never a SET), so units reserved + units left =
 * initial still holds and no concurrent reservation is lost. Replies { 0, initial,
 * remaining, 0, state }, { 1, … } when the item is not published (nothing changes).
 */
static const char add_units_lua[] = "local S = {open = 0, paused = 1, closed = 2}\n"
                                    "local state = redis.call('HGET', KEYS[1], 'state')\n"
                                    "if not state then return {1, 0, 0, 0, -1} end\n"
                                    "local initial = redis.call('HINCRBY', KEYS[1], 'initial', ARGV[1])\n"
                                    "local left = redis.call('INCRBY', KEYS[2], ARGV[1])\n"
                                    "return {0, initial, left, 0, S[state] or -1}\n";

/*
 * reserve — KEYS: meta, stock, buyers, orders, log, seq. ARGV: activity_id, item_id,
 * deadline_ms; then per reservation: user_id, order_no, now_ms, expires_at_ms.
 * (n >= 1 reservations of this item, so ARGV has 3 + 4n entries.)
 * One call carries every reservation that one connection has for one item in one turn
 * of its loop (redis_stock.c batches them), so Redis pays its per-command costs (read,
 * dispatch, the AOF write and fsync) once per batch and its per-item reads once; the
 * reservations in it are taken one after the other, in ARGV order, exactly as n calls
 * of one reservation each would take them.
 * Guarantees, in this order: a batch that runs after deadline_ms of Redis' own clock
 * (0: no deadline) changes nothing (code 9: the daemon has given up on it and told the
 * buyers so, so it must not take a unit); the item is published for this activity
 * (else code 6 for the whole batch). Then for each reservation: a retry of an order
 * number that already holds a unit for this buyer (also one taken earlier in the same
 * batch) answers RESERVED again with the same order, without taking a second unit
 * (outcome 7 if the number belongs to another buyer); the item is open (else PAUSED 5
 * / NOT_ON_SALE 6); now is in [starts_at, ends_at) (else NOT_STARTED 3 / ENDED 4); the
 * buyer holds fewer units than the limit (else LIMIT_REACHED 2); a unit is left (else
 * SOLD_OUT 1). Only then: stock -1, the buyer's count +1, the buyer's seq +1 (never
 * decreases), the pre-order in orders[order_no], and one entry appended to the log
 * stream. A refusal changes nothing. Never oversells: the stock never goes below zero.
 * Replies { code, initial, remaining after the batch, 0, state } and, when code is 0,
 * seven integers per reservation, in ARGV order: { outcome, remaining after it, units
 * the buyer holds after it, seq, price, reserved_at_ms, expires_at_ms } (the last four
 * 0 unless RESERVED; for a retry they are the held order's).
 */
static const char reserve_lua[] =
    "local n = (#ARGV - 3) / 4\n"
    "if n < 1 or n ~= math.floor(n) then return redis.error_reply('reserve: ARGV must be 3 + 4 per reservation') end\n"
    "if ARGV[3] ~= '0' then\n"
    "  local t = redis.call('TIME')\n"
    "  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[3]) then return {9, 0, 0, 0, -1} end\n"
    "end\n"
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "local m = redis.call('HMGET', KEYS[1], 'state', 'starts_at_ms', 'ends_at_ms', 'limit', 'activity_id',\n"
    "                     'price_cents', 'initial')\n"
    "if not m[1] or m[5] ~= ARGV[1] then return {6, 0, 0, 0, -1} end\n"
    "local initial = tonumber(m[7])\n"
    "local left = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local st = S[m[1]] or -1\n"
    "local starts, ends, limit, price = tonumber(m[2]), tonumber(m[3]), tonumber(m[4]), tonumber(m[6])\n"
    "local users, nos = {}, {}\n"
    "for i = 1, n do\n"
    "  users[i] = ARGV[4 * i]\n"
    "  nos[i] = ARGV[4 * i + 1]\n"
    "end\n"
    "local heldv = redis.call('HMGET', KEYS[3], unpack(users))\n"
    "local prev = redis.call('HMGET', KEYS[4], unpack(nos))\n"
    "local held, seq, seqv, made = {}, {}, nil, {}\n"
    "local buyers, seqs, orders = {}, {}, {}\n"
    "local out = {0, initial, 0, 0, st}\n"
    "for i = 1, n do\n"
    "  local u, o, now, exp = users[i], nos[i], ARGV[4 * i + 2], ARGV[4 * i + 3]\n"
    "  if held[u] == nil then held[u] = tonumber(heldv[i] or '0') end\n"
    "  local pre = made[o] or prev[i]\n"
    "  local code, q, p, r, e = 0, 0, 0, 0, 0\n"
    "  if pre then\n"
    "    local pu, pq, pa, pp, pr, pe = string.match(pre, '^(%d+):(%d+):(%d+):(%-?%d+):(%d+):(%d+)$')\n"
    "    if pu ~= u then code = 7\n"
    "    else q, p, r, e = tonumber(pq), tonumber(pp), tonumber(pr), tonumber(pe) end\n"
    "  elseif m[1] == 'paused' then code = 5\n"
    "  elseif m[1] ~= 'open' then code = 6\n"
    "  elseif tonumber(now) < starts then code = 3\n"
    "  elseif tonumber(now) >= ends then code = 4\n"
    "  elseif held[u] >= limit then code = 2\n"
    "  elseif left <= 0 then code = 1\n"
    "  else\n"
    "    if seqv == nil then seqv = redis.call('HMGET', KEYS[6], unpack(users)) end\n"
    "    if seq[u] == nil then seq[u] = tonumber(seqv[i] or '0') end\n"
    "    left = left - 1\n"
    "    held[u] = held[u] + 1\n"
    "    seq[u] = seq[u] + 1\n"
    "    q, p, r, e = seq[u], price, tonumber(now), tonumber(exp)\n"
    "    local rec = u .. ':' .. q .. ':' .. m[5] .. ':' .. m[6] .. ':' .. now .. ':' .. exp\n"
    "    made[o] = rec\n"
    "    orders[#orders + 1] = o\n"
    "    orders[#orders + 1] = rec\n"
    "    redis.call('XADD', KEYS[5], '*', 'order_no', o, 'user_id', u, 'activity_id', m[5], 'item_id', ARGV[2],\n"
    "               'seq', q, 'price_cents', m[6], 'reserved_at_ms', now, 'expires_at_ms', exp)\n"
    "  end\n"
    "  local k = 5 + 7 * (i - 1)\n"
    "  out[k + 1], out[k + 2], out[k + 3], out[k + 4] = code, left, held[u], q\n"
    "  out[k + 5], out[k + 6], out[k + 7] = p, r, e\n"
    "end\n"
    "if #orders > 0 then\n"
    "  redis.call('DECRBY', KEYS[2], #orders / 2)\n"
    "  for u, q in pairs(seq) do\n"
    "    buyers[#buyers + 1], buyers[#buyers + 2] = u, held[u]\n"
    "    seqs[#seqs + 1], seqs[#seqs + 2] = u, q\n"
    "  end\n"
    "  redis.call('HSET', KEYS[3], unpack(buyers))\n"
    "  redis.call('HSET', KEYS[6], unpack(seqs))\n"
    "  redis.call('HSET', KEYS[4], unpack(orders))\n"
    "end\n"
    "out[3] = left\n"
    "return out\n";

/*
 * release — KEYS: meta, stock, buyers, orders. ARGV: order_no, user_id.
 * Guarantees: the unit of an order goes back exactly once: only when order_no is
 * still in orders (then HDEL, stock +1, the buyer's count -1, the buyer's field
 * deleted at 0, changed = 1); any later call, or a call for an unknown order, changes
 * nothing (changed = 0). An order of another buyer is refused (code 7, nothing
 * changes). Works in every state, as a closed order's unit goes back even after the
 * sale. The buyer's seq is left alone. Replies { 0, initial, remaining, units the
 * buyer holds, state, changed }.
 */
static const char release_lua[] =
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "local m = redis.call('HMGET', KEYS[1], 'initial', 'state')\n"
    "local initial = tonumber(m[1] or '0')\n"
    "local st = S[m[2] or ''] or -1\n"
    "local left = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local held = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')\n"
    "local pre = redis.call('HGET', KEYS[4], ARGV[1])\n"
    "if not pre then return {0, initial, left, held, st, 0} end\n"
    "local owner = string.match(pre, '^(%d+):')\n"
    "if owner ~= ARGV[2] then return {7, initial, left, held, st, 0} end\n"
    "redis.call('HDEL', KEYS[4], ARGV[1])\n"
    "left = redis.call('INCR', KEYS[2])\n"
    "held = redis.call('HINCRBY', KEYS[3], owner, -1)\n"
    "if held <= 0 then\n"
    "  redis.call('HDEL', KEYS[3], owner)\n"
    "  held = 0\n"
    "end\n"
    "return {0, initial, left, held, st, 1}\n";

/*
 * get_order — KEYS: meta, stock, buyers, orders. ARGV: order_no. Read only.
 * Replies { 0, initial, remaining, 0, state, user, seq, activity, price,
 * reserved_at_ms, expires_at_ms } for a held order, { 8, … } when the store does not
 * hold it (never reserved here, or its unit was released).
 */
static const char get_order_lua[] =
    "local S = {open = 0, paused = 1, closed = 2}\n"
    "local m = redis.call('HMGET', KEYS[1], 'initial', 'state')\n"
    "local initial = tonumber(m[1] or '0')\n"
    "local st = S[m[2] or ''] or -1\n"
    "local left = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "local pre = redis.call('HGET', KEYS[4], ARGV[1])\n"
    "if not pre then return {8, initial, left, 0, st, 0, 0, 0, 0, 0, 0} end\n"
    "local u, q, a, p, r, e = string.match(pre, '^(%d+):(%d+):(%d+):(%-?%d+):(%d+):(%d+)$')\n"
    "return {0, initial, left, 0, st, tonumber(u), tonumber(q), tonumber(a), tonumber(p), tonumber(r),\n"
    "        tonumber(e)}\n";

const struct sk_rstock_script_def sk_rstock_scripts[RS_NSCRIPTS] = {
    [RS_PUBLISH] = {.name = "publish", .text = publish_lua, .nkeys = 2},
    [RS_QUERY] = {.name = "query", .text = query_lua, .nkeys = 2},
    [RS_SET_STATE] = {.name = "set_state", .text = set_state_lua, .nkeys = 2},
    [RS_ADD_UNITS] = {.name = "add_units", .text = add_units_lua, .nkeys = 2},
    [RS_RESERVE] = {.name = "reserve", .text = reserve_lua, .nkeys = 6},
    [RS_RELEASE] = {.name = "release", .text = release_lua, .nkeys = 4},
    [RS_GET_ORDER] = {.name = "get_order", .text = get_order_lua, .nkeys = 4},
};

void sk_rstock_keys(const char *prefix, uint64_t item_id, size_t nkeys, struct sk_rstock_keys *out)
{
    /* Indexed by enum sk_rstock_key. (scripts/bench/lua_from_c.py reads this array.) */
    static const char *const suffix[RS_NKEYS] = {"meta", "stock", "buyers", "orders", "log", "seq"};
    for (size_t i = 0; i < nkeys && i < RS_NKEYS; i++) {
        snprintf(out->buf[i], sizeof(out->buf[i]), "%s:{item:%" PRIu64 "}:%s", prefix, item_id, suffix[i]);
        out->keys[i] = out->buf[i];
    }
}

uint32_t sk_rstock_count(long long v)
{
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

enum sk_stock_state sk_rstock_state_of(long long code)
{
    return code == 0 ? SK_STOCK_OPEN : code == 1 ? SK_STOCK_PAUSED : SK_STOCK_CLOSED;
}
