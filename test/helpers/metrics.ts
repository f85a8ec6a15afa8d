// Reading Prometheus text as the metrics endpoint serves it.

/** The value of one sample line, e.g. sampleValue(text, 'jenkins_oidc_tokens_issued_total{kind="id_token",client="ci-main"}'); undefined when absent. */
export function sampleValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
