-- One exchange with a fleet's slot schedule for one scope, atomic, timed by Redis's own clock:
-- the twin of schedule.rs, line for line, and the copy of the rate law (throttle/law.rs) for
-- Redis. Times in microseconds; the law's in seconds.
-- KEYS[1]: the schedule's hash (phase, since, base, ceiling, probe, decreased, tat, hold, until,
--   last, quiet, margin, accounted, the tally since the cut: tadm, tref; the meter of the rate
--   admitted: mstart, mcur, mprev).
-- ARGV: want, throttled (0 no, 1 yes), slot issued and slot time (-1 unknown), the rate it was
--       issued at (0 unknown), hold ms, quota remaining (-1 none),
--       quota reset ms, then the law: start rate, doubling s, beta, probe, min probe,
--       acceleration s, min rate, max rate, forget ms, quiet s, max quiet s, margin,
--       max margin, beta when refuted; then the time (us) that slots of earlier leases stood for
--       and went unused; answers admitted since the last exchange; whether the throttling
--       answer gave a time to come back, whether requests were waiting, the rate the reporter
--       was sending at (0 unknown); then the law's sparse share, sparse count, clear gap,
--       engage headroom and meter window (s).
-- Returns {now, first, interval, granted, hold, rate * 1000, gap before the first slot,
--   decreased}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1e6 + tonumber(time[2])
local key = KEYS[1]
local want = tonumber(ARGV[1])
local throttled = tonumber(ARGV[2]) == 1
local issued = tonumber(ARGV[3])
local sent = tonumber(ARGV[4])
local issued_at = tonumber(ARGV[5])
local hold_ms = tonumber(ARGV[6])
local remaining = tonumber(ARGV[7])
local reset_ms = tonumber(ARGV[8])
local START, DOUBLING, BETA = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local PROBE, MIN_PROBE, ACCELERATION = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local MIN_RATE, MAX_RATE, FORGET = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
local QUIET, MAX_QUIET = tonumber(ARGV[18]), tonumber(ARGV[19])
local MARGIN, MAX_MARGIN = tonumber(ARGV[20]), tonumber(ARGV[21])
local BETA_REFUTED = tonumber(ARGV[22])
local unused = tonumber(ARGV[23])
local admitted = tonumber(ARGV[24])
local held = tonumber(ARGV[25]) == 1
local backlogged = tonumber(ARGV[26]) == 1
local sending = tonumber(ARGV[27])
local SPARSE, SPARSE_AFTER = tonumber(ARGV[28]), tonumber(ARGV[29])
local CLEAR_GAP, HEADROOM, WINDOW = tonumber(ARGV[30]), tonumber(ARGV[31]), tonumber(ARGV[32])

local f = redis.call('HMGET', key, 'phase', 'since', 'base', 'ceiling', 'probe', 'decreased',
  'tat', 'hold', 'until', 'last', 'quiet', 'margin', 'accounted', 'tadm', 'tref', 'mstart',
  'mcur', 'mprev')
local phase, since, base, ceiling, probe, decreased, tat, hold, untl, last, quiet, margin
local accounted, tadm, tref, mstart, mcur, mprev
local fresh = not f[1]
if f[1] then
  phase = f[1]
  since, base, ceiling, probe = tonumber(f[2]), tonumber(f[3]), tonumber(f[4]), tonumber(f[5])
  decreased, tat, hold, untl = tonumber(f[6]), tonumber(f[7]), tonumber(f[8]), tonumber(f[9])
  last, quiet, margin = tonumber(f[10]), tonumber(f[11]) or 0, tonumber(f[12]) or MARGIN
  accounted = tonumber(f[13]) or now
  tadm, tref = tonumber(f[14]) or 0, tonumber(f[15]) or 0
  mstart, mcur, mprev = tonumber(f[16]) or now / 1e6, tonumber(f[17]) or 0, tonumber(f[18]) or -1
else
  phase, since, base, ceiling, probe, decreased, hold, untl = 's', now, START, 0, PROBE, -1, 0, 0
  last, quiet, margin, accounted = -1, 0, MARGIN, now
  tadm, tref, mstart, mcur, mprev = 0, 0, now / 1e6, 0, -1
end

-- law.rs's `probing`: the rate t seconds after a cut.
local function grown(speed, t) return speed * ceiling * t * 2 ^ (t / ACCELERATION) end
local function probing(t)
  if quiet <= 0 then return base + grown(probe, t) end
  local climbed = math.min(base + grown(PROBE, math.min(t, quiet)), math.max((1 - margin) * ceiling, base))
  if t > quiet then return climbed + grown(probe, t - quiet) end
  return climbed
end

local function rate(at)
  local t = math.max(0, at - since) / 1e6
  local r
  if phase == 's' then
    r = base * 2 ^ math.min(t / DOUBLING, 64)
  elseif phase == 'p' then
    r = probing(t)
  elseif at < untl then
    r = base
  else
    r = base + probe * base * (at - untl) / 1e6
  end
  return math.min(math.max(r, MIN_RATE), MAX_RATE)
end

-- law.rs's `Law::cut`: to `at` (the rate sent at, or the rate admitted when clearly lower) under
-- the new ceiling, never below the rate admitted (`adm`, nil when unmeasured).
local function cut(at, sent_rate, probing_now, t, adm, h)
  -- `Law::refutes`: sent at no more than the last cut's rate, that ceiling was wrong.
  local refuted = probing_now and sent_rate <= base * (1 + MARGIN) and at >= sent_rate
  local near = not refuted and ceiling > 0 and math.abs(at - ceiling) <= 0.1 * ceiling
  -- `margin_after`: doubled by an overshoot at the plateau, before the quiet time.
  if not probing_now and h then
    margin = MAX_MARGIN
  elseif not refuted and probing_now and quiet > 0 and t < quiet then
    margin = math.min(2 * margin, MAX_MARGIN)
  end
  -- `quiet_after`.
  if not probing_now and not h then
    quiet = 0
  elseif probing_now and near and quiet > 0 then
    quiet = math.min(2 * quiet, MAX_QUIET)
  else
    quiet = QUIET
  end
  if near then probe = math.max(probe / 4, MIN_PROBE) else probe = PROBE end
  -- `Law::refuted_beta`: deeper, and the square of the last cut's when that was one.
  local beta = BETA
  if refuted then
    local l = BETA
    if ceiling > 0 then l = base / ceiling end
    beta = math.min(BETA_REFUTED, l * l)
  end
  ceiling = at
  base = math.max(at * beta, MIN_RATE)
  if adm then base = math.max(base, math.min(adm, MAX_RATE)) end
end

-- law.rs's `Meter`: answers admitted per second over the last one or two windows; for an
-- answer that held the scope (`h`), the intervals between them (one fewer).
local function roll(t)
  local elapsed = t - mstart
  if elapsed >= 2 * WINDOW then
    mprev, mcur, mstart = 0, 0, t
  elseif elapsed >= WINDOW then
    mprev, mcur, mstart = mcur, 0, mstart + WINDOW
  end
end
local function admitted_rate(t, h)
  roll(t)
  if mprev < 0 then return nil end
  local n = mprev + mcur
  if h then n = math.max(n - 1, 0) end
  return n / (WINDOW + math.max(t - mstart, 0))
end

-- law.rs's `Tally::refuse`, the sparse rule: whether a throttling answer cuts.
local function refuse(h)
  local answers = tadm + tref
  tref = tref + 1
  return h or answers < SPARSE_AFTER or tref >= SPARSE * (answers + 1)
end

if fresh then
  -- law.rs's `Law::engage`: probing from above the rate the reporter was sending at.
  if throttled and sending > START then
    local s0 = math.min(sending, MAX_RATE)
    cut(s0, s0, false, 0, nil, false)
    base = s0 * HEADROOM
    phase = 'p'
    decreased = now
  end
  if throttled then tat = now + 1e6 / rate(now) else tat = now end
end

if admitted > 0 then
  roll(now / 1e6)
  mcur = mcur + admitted
  tadm = tadm + admitted
end
if throttled and issued >= 0 and issued >= decreased and refuse(held) then
  local sent_rate = rate(math.min(sent, now))
  if issued_at > 0 then sent_rate = math.min(sent_rate, issued_at) end
  local steady = backlogged and phase == 'p' and mprev >= 0 and mstart >= since / 1e6 + WINDOW
  local adm = admitted_rate(now / 1e6, held)
  -- law.rs's `cut_from`.
  local at = sent_rate
  if steady and adm and adm < CLEAR_GAP * sent_rate then at = math.max(adm, MIN_RATE) end
  local t = math.max(0, math.min(sent, now) - since) / 1e6
  cut(at, sent_rate, phase == 'p', t, adm, held)
  phase = 'p'
  since = now
  decreased = now
  tadm, tref = 0, 0
end
-- schedule.rs: a lease whose first slot is free at once, or a hold while no slot is
-- outstanding: the rate held nobody back since the last slot, and does not grow for that time.
-- Accounted for up to the latest of: the last time so found, the last slot, the hold, the cut.
accounted = math.max(accounted, last, hold, decreased)
if math.max(tat, hold) <= now and (want > 0 or hold_ms > 0) then
  if now > accounted and (phase == 's' or phase == 'p') then since = since + (now - accounted) end
  accounted = math.max(accounted, now)
end
-- schedule.rs: slots a process woke too late for held nobody back either: their time does not
-- count (at most back to the phase's start).
if unused > 0 and (phase == 's' or phase == 'p') and since < now then
  since = math.min(since + unused, now)
end
if hold_ms > 0 then
  local till = now + hold_ms * 1e3
  local held = math.max(hold, now)
  if till > held then
    if phase == 's' or phase == 'p' then since = since + (till - held) end
    hold = till
  end
end
if remaining >= 0 and reset_ms > 0 then
  local r = math.min(math.max(remaining * 1e3 / reset_ms, MIN_RATE), MAX_RATE)
  phase = 'e'
  untl = now + reset_ms * 1e3
  since = now
  base = r
  ceiling = r
end
local first = math.max(tat, now, hold)
local r = rate(first)
local interval = 1e6 / r
-- The gap before the first slot: the spacing it was sent at, for the cut at its answer.
local gap = 0
if last >= 0 then gap = first - last end
if want > 0 then
  tat = first + want * interval
  last = first + (want - 1) * interval
end

local function s(x) return string.format('%.17g', x) end
redis.call('HSET', key, 'phase', phase, 'since', s(since), 'base', s(base), 'ceiling', s(ceiling),
  'probe', s(probe), 'decreased', s(decreased), 'tat', s(tat), 'hold', s(hold), 'until', s(untl),
  'last', s(last), 'quiet', s(quiet), 'margin', s(margin), 'accounted', s(accounted),
  'tadm', s(tadm), 'tref', s(tref), 'mstart', s(mstart), 'mcur', s(mcur), 'mprev', s(mprev))
-- Forgotten once quiet, as a lane is: nothing scheduled or held for the forget time.
local last = math.max(tat, hold)
redis.call('PEXPIRE', key, math.floor((last - now) / 1e3) + FORGET)
return {math.floor(now), math.floor(first), math.floor(interval), want, math.floor(hold),
  math.floor(r * 1000), math.floor(gap), math.floor(decreased)}
