/** @odoo-module **/
import {Component, useState} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {formatPercent, formatSeconds} from "../format";
import {
    DEFAULT_SORT,
    TOP_ROUTES,
    nextSort,
    routeColumns,
    sortRoutes,
} from "../requests_view/requests_model";

/**
 * Per route (URL path, ``model.method``, ``cron:<name>``): count, total time,
 * percentiles, max, CPU and SQL shares; sortable by any column, total time
 * first, the top ones until "Show all". A row opens its requests.
 */
export class RoutesTable extends Component {
    static template = "worker_inspector.RoutesTable";
    static props = {
        // requests_model.routeRows of the API's routes
        routes: {type: Array, element: Object},
        // the route whose requests are shown, if any
        selected: {type: [String, {value: null}], optional: true},
        // called with a route's key
        onSelect: Function,
    };

    setup() {
        this.state = useState({sort: {...DEFAULT_SORT}, showAll: false});
        this.columns = routeColumns();
        this.top = TOP_ROUTES;
    }

    get rows() {
        const sorted = sortRoutes(this.props.routes, this.state.sort);
        return this.state.showAll ? sorted : sorted.slice(0, TOP_ROUTES);
    }

    get toggleLabel() {
        return this.state.showAll
            ? _t("Show the top %s", TOP_ROUTES)
            : _t("Show all %s routes", this.props.routes.length);
    }

    /** Enter or space on a focused row opens its requests, as a click does. */
    onRowKey(ev, key) {
        if (ev.key === "Enter" || ev.key === " ") {
            ev.preventDefault();
            this.props.onSelect(key);
        }
    }

    sortBy(column) {
        this.state.sort = nextSort(this.state.sort, column);
    }

    sortIcon(column) {
        const {sort} = this.state;
        if (sort.column !== column) {
            return "";
        }
        return sort.descending ? "fa-sort-desc" : "fa-sort-asc";
    }

    cell(route, column) {
        switch (column) {
            case "key":
                return route.key;
            case "count":
                return String(route.count);
            case "cpu_share":
            case "sql_share":
                return formatPercent(route[column] * 100);
            default:
                return formatSeconds(route[column]);
        }
    }
}
