package contract

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// Formats a statement renders in.
const (
	FormatJSON  = "json"
	FormatCSV   = "csv"
	FormatTable = "table"
)

// Write renders s to w as json, csv or table. Each is deterministic: the
// same statement gives the same bytes.
func (s *Statement) Write(w io.Writer, format string) error {
	switch format {
	case FormatJSON:
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case FormatCSV:
		return s.writeCSV(w)
	case FormatTable:
		return s.writeTable(w)
	}
	return fmt.Errorf("unknown format %q (want json, csv or table)", format)
}

// csvRow is one line of the CSV form: which part of the statement, the
// counterparty it belongs to (if any), the item (provider/model, an
// agreement's name, team/key), the metric and its value.
type csvRow struct{ section, counterparty, item, metric, value string }

func (s *Statement) rows() []csvRow {
	var out []csvRow
	add := func(section, cp, item, metric, value string) {
		out = append(out, csvRow{section, cp, item, metric, value})
	}
	usage := func(section, cp, item string, u Usage) {
		add(section, cp, item, "requests", strconv.FormatInt(u.Requests, 10))
		add(section, cp, item, "records", strconv.FormatInt(u.Records, 10))
		add(section, cp, item, "input_tokens", strconv.FormatInt(u.InputTokens, 10))
		add(section, cp, item, "output_tokens", strconv.FormatInt(u.OutputTokens, 10))
		add(section, cp, item, "cached_tokens", strconv.FormatInt(u.CachedTokens, 10))
		add(section, cp, item, "list_cost", u.ListCost.String())
		add(section, cp, item, "discounts", u.Discounts.String())
		add(section, cp, item, "net_cost", u.NetCost.String())
	}
	for _, c := range s.Counterparties {
		usage("counterparty", c.Name, "", c.Usage)
		for _, l := range c.Lines {
			usage("usage", c.Name, l.Provider+"/"+l.Model, l.Usage)
		}
		for _, t := range c.PriceTerms {
			add("price_terms", c.Name, t.Name, "list_cost", t.ListCost.String())
			add("price_terms", c.Name, t.Name, "discount", t.Discount.String())
		}
		for _, m := range c.Commitments {
			for _, kv := range [][2]string{
				{"amount", m.Amount.String()}, {"burn_period", m.BurnPeriod.String()}, {"burn_to_date", m.BurnToDate.String()},
				{"remaining", m.Remaining.String()}, {"schedule", m.Schedule.String()}, {"variance", m.Variance.String()},
				{"projected_at_end", m.ProjectedAtEnd.String()}, {"projected_shortfall", m.ProjectedShortfall.String()},
				{"alert", strconv.FormatBool(m.Alert)}, {"discount_earned", m.DiscountEarned.String()},
			} {
				add("commitment", c.Name, m.Name, kv[0], kv[1])
			}
			for _, p := range m.Minimums {
				item := m.Name + "@" + p.From.Format(time.DateOnly)
				add("commitment_minimum", c.Name, item, "minimum", p.Minimum.String())
				add("commitment_minimum", c.Name, item, "spent", p.Spent.String())
				add("commitment_minimum", c.Name, item, "shortfall", p.Shortfall.String())
				add("commitment_minimum", c.Name, item, "closed", strconv.FormatBool(p.Closed))
			}
		}
		for _, r := range c.RevenueShares {
			add("revenue_share", c.Name, r.Name, "payer", r.Payer)
			add("revenue_share", c.Name, r.Name, "rate", r.Rate.String())
			add("revenue_share", c.Name, r.Name, "base_period", r.BasePeriod.String())
			add("revenue_share", c.Name, r.Name, "accrued_period", r.AccruedPeriod.String())
			add("revenue_share", c.Name, r.Name, "accrued_to_date", r.AccruedToDate.String())
			if r.Cap != nil {
				add("revenue_share", c.Name, r.Name, "cap", r.Cap.String())
				add("revenue_share", c.Name, r.Name, "cap_remaining", r.CapRemaining.String())
			}
			add("revenue_share", c.Name, r.Name, "ended", strconv.FormatBool(r.Ended))
		}
	}
	for _, c := range s.Chargeback {
		item := c.Team + "/" + c.Key
		usage("chargeback", "", item, c.Usage)
		add("chargeback", "", item, "revenue_share", c.RevenueShare.String())
	}
	for _, a := range s.Agreements {
		add("agreement", "", a.Name, "records", strconv.FormatInt(a.Records, 10))
		add("agreement", "", a.Name, "requests", strconv.FormatInt(a.Requests, 10))
		add("agreement", "", a.Name, "list_cost", a.ListCost.String())
	}
	usage("total", "", "usage", s.Totals.Usage)
	usage("total", "", "billed", s.Totals.Billed)
	add("total", "", "revenue_shares", "accrued_period", s.Totals.RevenueShares.String())
	return out
}

func (s *Statement) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"period", "section", "counterparty", "item", "metric", "value"})
	for _, r := range s.rows() {
		_ = cw.Write([]string{s.Period, r.section, r.counterparty, r.item, r.metric, r.value})
	}
	cw.Flush()
	return cw.Error()
}

func (s *Statement) writeTable(w io.Writer) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "Statement %s  [%s, %s)  as of %s  (%s)\n", s.Period, s.From.Format(time.DateOnly),
		s.To.Format(time.DateOnly), s.AsOf.Format(time.RFC3339), s.Currency)
	tw := tabwriter.NewWriter(&buf, 2, 4, 2, ' ', tabwriter.AlignRight)
	head := func(title string, cols ...string) {
		tw.Flush()
		fmt.Fprintf(&buf, "\n%s\n", title)
		for _, c := range cols {
			fmt.Fprintf(tw, "%s\t", c)
		}
		fmt.Fprintln(tw)
	}
	row := func(cells ...string) {
		for _, c := range cells {
			fmt.Fprintf(tw, "%s\t", c)
		}
		fmt.Fprintln(tw)
	}
	n := func(i int64) string { return strconv.FormatInt(i, 10) }
	for _, c := range s.Counterparties {
		head("Counterparty "+c.Name, "provider", "model", "requests", "records", "input", "output", "cached", "list", "discounts", "net")
		for _, l := range c.Lines {
			row(l.Provider, l.Model, n(l.Requests), n(l.Records), n(l.InputTokens), n(l.OutputTokens), n(l.CachedTokens),
				l.ListCost.String(), l.Discounts.String(), l.NetCost.String())
		}
		row("total", "", n(c.Requests), n(c.Records), n(c.InputTokens), n(c.OutputTokens), n(c.CachedTokens),
			c.ListCost.String(), c.Discounts.String(), c.NetCost.String())
		for _, t := range c.PriceTerms {
			row("price terms "+t.Name, "", "", "", "", "", "", t.ListCost.String(), t.Discount.String(), "")
		}
		if len(c.Commitments) > 0 {
			head("  commitments", "name", "amount", "burn period", "burn to date", "schedule", "variance", "projected", "shortfall", "alert", "discount")
			for _, m := range c.Commitments {
				row(m.Name, m.Amount.String(), m.BurnPeriod.String(), m.BurnToDate.String(), m.Schedule.String(), m.Variance.String(),
					m.ProjectedAtEnd.String(), m.ProjectedShortfall.String(), strconv.FormatBool(m.Alert), m.DiscountEarned.String())
				for _, p := range m.Minimums {
					row("  minimum from "+p.From.Format(time.DateOnly), p.Minimum.String(), "", p.Spent.String(), "", "", "", p.Shortfall.String(), "", "")
				}
			}
		}
		if len(c.RevenueShares) > 0 {
			head("  revenue shares received", "name", "payer", "rate", "base", "accrued", "to date", "cap", "left", "ended")
			for _, r := range c.RevenueShares {
				cp, left := "none", ""
				if r.Cap != nil {
					cp, left = r.Cap.String(), r.CapRemaining.String()
				}
				row(r.Name, r.Payer, r.Rate.String(), r.BasePeriod.String(), r.AccruedPeriod.String(), r.AccruedToDate.String(), cp, left, strconv.FormatBool(r.Ended))
			}
		}
	}
	head("Chargeback", "team", "key", "requests", "input", "output", "list", "discounts", "net", "revenue share")
	for _, c := range s.Chargeback {
		row(c.Team, c.Key, n(c.Requests), n(c.InputTokens), n(c.OutputTokens), c.ListCost.String(), c.Discounts.String(), c.NetCost.String(), c.RevenueShare.String())
	}
	head("Agreements", "name", "type", "records", "requests", "list")
	for _, a := range s.Agreements {
		row(a.Name, a.Type, n(a.Records), n(a.Requests), a.ListCost.String())
	}
	head("Totals", "", "requests", "records", "list", "discounts", "net")
	u, b := s.Totals.Usage, s.Totals.Billed
	row("all attempts", n(u.Requests), n(u.Records), u.ListCost.String(), u.Discounts.String(), u.NetCost.String())
	row("billed", n(b.Requests), n(b.Records), b.ListCost.String(), b.Discounts.String(), b.NetCost.String())
	row("revenue shares", "", "", s.Totals.RevenueShares.String(), "", "")
	tw.Flush()
	_, err := w.Write(buf.Bytes())
	return err
}
