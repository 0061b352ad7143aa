import { IDoneFrame, IUsage, IUsageTotals } from './protocol';

// One fixed locale: "1.234 tokens" next to "$0.0012" would read as nonsense.
const COUNT = new Intl.NumberFormat('en-US');
const DOLLARS = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD'
});
// A typical answer costs a fraction of a cent, which whole cents would show as $0.00.
const FRACTION_OF_A_CENT = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  maximumSignificantDigits: 2
});

export function formatCost(usd: number): string {
  return usd > 0 && usd < 0.01
    ? FRACTION_OF_A_CENT.format(usd)
    : DOLLARS.format(usd);
}

export function formatTokens(usage: IUsage): string {
  return (
    `${COUNT.format(usage.prompt_tokens)} + ` +
    `${COUNT.format(usage.completion_tokens)} = ` +
    `${COUNT.format(usage.total_tokens)} tokens`
  );
}

/**
 * "answered by backup after main failed (server error)" when a fallback answered,
 * else null. The first attempt is always the model the question asked for.
 */
export function failoverText(frame: IDoneFrame): string | null {
  const requested = frame.attempts[0]?.model;
  // A cached answer gets its own badge; "failed" would misdescribe a paused provider.
  if (!frame.model || !requested || requested === frame.model || frame.cached) {
    return null;
  }
  const last = frame.attempts
    .filter(attempt => attempt.model === requested)
    .pop();
  const why = last ? ` (${last.outcome.replace(/_/g, ' ')})` : '';
  return `answered by ${frame.model} after ${requested} failed${why}`;
}

/** One line per attempt, for a tooltip: "main: server error, retried after 0.3 s". */
export function attemptsText(frame: IDoneFrame): string {
  return frame.attempts
    .map(attempt => {
      const retry =
        attempt.retry_in_s !== undefined
          ? `, retried after ${attempt.retry_in_s} s`
          : '';
      return `${attempt.model}: ${attempt.outcome.replace(/_/g, ' ')}${retry}`;
    })
    .join('\n');
}

export function emptyTotals(): IUsageTotals {
  return {
    requests: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    total_tokens: 0,
    cost_usd: 0,
    unpriced_requests: 0
  };
}

/**
 * Count an answer the way the server's usage ledger does, so the panel's running
 * total matches GET rubberduck/api/usage for the conversation.
 */
export function addAnswer(totals: IUsageTotals, frame: IDoneFrame): void {
  // The ledger skips cached answers (nothing was spent) and turns no model finished.
  if (frame.model === null || frame.cached) {
    return;
  }
  totals.requests += 1;
  totals.prompt_tokens += frame.usage.prompt_tokens;
  totals.completion_tokens += frame.usage.completion_tokens;
  totals.total_tokens += frame.usage.total_tokens;
  if (frame.cost_usd === null) {
    totals.unpriced_requests += 1;
  } else {
    totals.cost_usd += frame.cost_usd;
  }
}

/** "This conversation: 124 tokens · $0.00024", or '' before the first answer. */
export function spendText(totals: IUsageTotals): string {
  if (!totals.requests) {
    return '';
  }
  const parts = [`${COUNT.format(totals.total_tokens)} tokens`];
  const priced = totals.requests - totals.unpriced_requests;
  if (priced > 0) {
    const unpriced = totals.unpriced_requests
      ? ` + ${totals.unpriced_requests} unpriced`
      : '';
    parts.push(formatCost(totals.cost_usd) + unpriced);
  }
  return `This conversation: ${parts.join(' · ')}`;
}
